"""The HTTPS proxy's cost: /health and /api/notes at 16 connections through HAProxy (TLS) against straight to
gunicorn, in the same prod stack."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bench.context import Bench, Section
from bench.evaluate import Results, Row, judged, load_hint
from bench.load import pinning, pinning_note
from bench.sections.serve import ENDPOINTS, REFERENCE_CONCURRENCY, WARM_UP_S, serving_summary
from lifecycle.commands import docker
from lifecycle.stages import PROD

PROXY_TARGETS = {"throughput_pct": 85.0}  # through the proxy: at least 85 % of the direct throughput


def measure(bench: Bench) -> dict[str, Any]:
    bench.ensure_image(PROD)
    direct, proxied = bench.suite.app_url().rstrip("/"), bench.suite.url(PROD).rstrip("/")
    bench.suite.up(PROD, build=False)
    try:
        cpus = os.cpu_count() or 1
        pin = pinning(cpus)
        if pin:  # wrk apart from the app, the proxy and the database (which all share the stack's CPUs)
            containers = [bench.service_id(service) for service in ("db", "prod", "proxy")]
            bench.run(docker.cpuset_argv(containers, pin.stack), env=bench.env, capture=True)
        measured: dict[str, Any] = {"pinning": pinning_note(pin, cpus), "endpoints": {}}

        def load(url: str) -> dict[str, Any]:
            return bench.load(url, REFERENCE_CONCURRENCY, pin=pin)

        for endpoint in ENDPOINTS:
            bench.load(proxied + endpoint, REFERENCE_CONCURRENCY, WARM_UP_S, pin)
            # Alternated, so a change in the machine's load over the section weighs on both sides alike.
            runs = [(load(direct + endpoint), load(proxied + endpoint)) for _ in range(bench.runs)]
            measured["endpoints"][endpoint] = {"direct": [d for d, _ in runs], "proxied": [p for _, p in runs]}
        return measured
    finally:
        bench.suite.down()


def rows(measured: Mapping[str, Any], results: Results) -> list[Row]:
    out = [Row("proxy_pinning", "load generator and stack CPUs", measured.get("pinning", "not recorded"))]
    for endpoint, pair in measured.get("endpoints", {}).items():
        direct, proxied = serving_summary(pair["direct"]), serving_summary(pair["proxied"])
        share = proxied["rps"] / direct["rps"] * 100 if proxied["rps"] and direct["rps"] else None
        failed = proxied["errors"] + direct["errors"]
        share = None if failed else share  # a run with failed requests measured the machine's trouble: not judged
        out.append(Row(f"proxy_{endpoint}", f"GET {endpoint} through the HTTPS proxy @ c={REFERENCE_CONCURRENCY}",
                       f"{proxied['rps']:.0f} vs {direct['rps']:.0f} req/s direct; p99 {proxied['p99_ms']} vs "
                       f"{direct['p99_ms']} ms; {proxied['errors']} vs {direct['errors']} errors"))  # fmt: skip
        why = (f"TLS and a second hop share the cores with gunicorn and the database ({measured.get('pinning')}); "
               f"numbers taken while other work loads the machine are not final; {load_hint(results)}")  # fmt: skip
        out.append(judged(f"proxy_share_{endpoint}", f"GET {endpoint} throughput through the proxy / direct", share,
                          PROXY_TARGETS["throughput_pct"], unit="%", digits=0, at_least=True, why=why))  # fmt: skip
    return out


SECTION = Section("proxy", "the HTTPS proxy's cost against straight to gunicorn", measure, rows, PROXY_TARGETS)
