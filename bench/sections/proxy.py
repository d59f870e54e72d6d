"""The HTTPS proxy's cost: /health and /api/notes at 16 connections through HAProxy (TLS) against straight to
gunicorn, in the same prod stack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.context import Bench, Section
from bench.evaluate import Results, Row, judged, load_hint
from bench.sections.serve import ENDPOINTS, REFERENCE_CONCURRENCY, WARM_UP_S, serving_summary
from lifecycle.stages import PROD

PROXY_TARGETS = {"throughput_pct": 85.0}  # through the proxy: at least 85 % of the direct throughput


def measure(bench: Bench) -> dict[str, Any]:
    bench.ensure_image(PROD)
    direct, proxied = bench.suite.app_url().rstrip("/"), bench.suite.url(PROD).rstrip("/")
    bench.suite.up(PROD, build=False)
    try:
        measured = {}
        for endpoint in ENDPOINTS:
            bench.load(proxied + endpoint, REFERENCE_CONCURRENCY, WARM_UP_S)
            measured[endpoint] = {
                "direct": [bench.load(direct + endpoint, REFERENCE_CONCURRENCY) for _ in range(bench.runs)],
                "proxied": [bench.load(proxied + endpoint, REFERENCE_CONCURRENCY) for _ in range(bench.runs)],
            }
        return measured
    finally:
        bench.suite.down()


def rows(measured: Mapping[str, Any], results: Results) -> list[Row]:
    out = []
    for endpoint, pair in measured.items():
        direct, proxied = serving_summary(pair["direct"]), serving_summary(pair["proxied"])
        share = proxied["rps"] / direct["rps"] * 100 if proxied["rps"] and direct["rps"] else None
        out.append(Row(f"proxy_{endpoint}", f"GET {endpoint} through the HTTPS proxy @ c={REFERENCE_CONCURRENCY}",
                       f"{proxied['rps']:.0f} vs {direct['rps']:.0f} req/s direct; p99 {proxied['p99_ms']} vs "
                       f"{direct['p99_ms']} ms; {proxied['errors']} errors"))  # fmt: skip
        why = f"TLS and a second hop share the cores with gunicorn, the database and wrk; {load_hint(results)}"
        out.append(judged(f"proxy_share_{endpoint}", f"GET {endpoint} throughput through the proxy / direct", share,
                          PROXY_TARGETS["throughput_pct"], unit="%", digits=0, at_least=True, why=why))  # fmt: skip
    return out


SECTION = Section("proxy", "the HTTPS proxy's cost against straight to gunicorn", measure, rows, PROXY_TARGETS)
