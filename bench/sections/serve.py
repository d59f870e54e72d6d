"""Serving: prod under load at several concurrencies, against a ceiling (the same gunicorn settings in the
same image serving a one-line WSGI app), with the site's status checked before each load."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bench.context import Bench, Section
from bench.evaluate import Results, Row, fmt, judged, load_hint, median, verdict
from bench.load import HTTPS_HEADER, free_port, http_status, wait_for
from lifecycle.commands import docker
from lifecycle.stages import PROD

CONCURRENCY = (1, 16, 32)
REFERENCE_CONCURRENCY = 16
ENDPOINTS = ("/health", "/api/notes")
SEED_NOTES = 20
WARM_UP_S = 2  # workers import lazily: a short load first
SERVE_TARGETS = {"p99_ms": 50.0, "ceiling_ratio": 0.5}
TRIVIAL_APP = """def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""


def measure(bench: Bench) -> dict[str, Any]:
    bench.ensure_image(PROD)
    serving: dict[str, Any] = {
        "tool": bench.tool,
        "duration_s": bench.duration,
        "workers": bench.env.get("GUNICORN_WORKERS", "2"),
        "threads": bench.env.get("GUNICORN_THREADS", "4"),
        "precheck": {},
        "site": {},
        "ceiling": {},
    }
    base_url = bench.suite.app_url().rstrip("/")
    bench.suite.up(PROD, build=False)
    try:
        for number in range(SEED_NOTES):
            http_status(
                base_url + "/api/notes", [HTTPS_HEADER], data=json.dumps({"text": f"bench note {number}"}).encode()
            )
        for endpoint in ENDPOINTS:
            url = base_url + endpoint
            serving["precheck"][endpoint] = http_status(url, [HTTPS_HEADER])
            bench.load(url, REFERENCE_CONCURRENCY, WARM_UP_S)
            serving["site"][endpoint] = load_series(bench, url)
    finally:
        bench.suite.down()
    serving["ceiling"] = measure_ceiling(bench)
    return serving


def load_series(bench: Bench, url: str) -> dict[str, list[dict[str, Any]]]:
    """`runs` load runs at each concurrency, by concurrency (as text: bench.json keys)."""
    return {str(c): [bench.load(url, c) for _ in range(bench.runs)] for c in CONCURRENCY}


def measure_ceiling(bench: Bench) -> dict[str, list[dict[str, Any]]]:
    """The same gunicorn settings in the same prod image, serving a one-line WSGI app."""
    port, name = free_port(), bench.container("ceiling")
    gunicorn_env = [f"{k}={v}" for k, v in bench.env.items() if k.startswith("GUNICORN_")]
    argv = docker.docker_argv(
        *("run", "--detach", "--rm", "--name", name, "--init", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"),
        *("--security-opt", "no-new-privileges:true", "--publish", f"127.0.0.1:{port}:8000"),
        *("--env", f"TRIVIAL_APP={TRIVIAL_APP}", *[arg for pair in gunicorn_env for arg in ("--env", pair)]),
        *("--entrypoint", "sh", bench.settings.image(PROD), "-c"),
        'printf "%s" "$TRIVIAL_APP" > /tmp/trivial.py && '
        "exec gunicorn --config /etc/gunicorn.conf.py --chdir /tmp trivial:app",
    )
    bench.run(argv, env=bench.env, capture=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(url)
        bench.load(url, REFERENCE_CONCURRENCY, WARM_UP_S)
        return load_series(bench, url)
    finally:
        bench.run(docker.docker_argv("rm", "--force", name), env=bench.env, warn=True, capture=True)


def serving_summary(samples: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Median req/s and latencies over runs; errors summed."""
    return {
        "rps": median(s.get("rps") for s in samples),
        "p50_ms": median(s.get("p50_ms") for s in samples),
        "p99_ms": median(s.get("p99_ms") for s in samples),
        "errors": sum(s.get("errors", 0) for s in samples) if samples else None,
    }


def percent(part: float | None, whole: float | None) -> float | None:
    return part / whole * 100 if part and whole else None


def rows(serving: Mapping[str, Any], results: Results) -> list[Row]:
    out: list[Row] = []
    ceiling = {c: serving_summary(serving.get("ceiling", {}).get(str(c), [])) for c in CONCURRENCY}
    for endpoint, by_c in serving.get("site", {}).items():
        out += endpoint_rows(endpoint, by_c, ceiling, serving, load_hint(results))
    return out


def endpoint_rows(
    endpoint: str,
    by_c: Mapping[str, Any],
    ceiling: Mapping[int, Mapping[str, float | None]],
    serving: Mapping[str, Any],
    busy: str,
) -> list[Row]:
    t = SERVE_TARGETS
    workers, threads = serving.get("workers", "2"), serving.get("threads", "4")
    slots = int(workers) * int(threads) if f"{workers}{threads}".isdigit() else 8
    summaries = {c: serving_summary(by_c.get(str(c), [])) for c in CONCURRENCY}
    out = []
    for c in CONCURRENCY:
        s, ceil = summaries[c], ceiling[c]
        value = (
            f"{fmt(s['rps'], 'req/s', 0)} ({fmt(percent(s['rps'], ceil['rps']), '%', 0)} of "
            f"{fmt(ceil['rps'], '', 0)}), "
            f"p50 {fmt(s['p50_ms'], 'ms')}, p99 {fmt(s['p99_ms'], 'ms')}"
        )
        out.append(Row(f"serve_{endpoint}_{c}", f"GET {endpoint} c={c}", value))
    errors = sum(s["errors"] or 0 for s in summaries.values())
    precheck = serving.get("precheck", {}).get(endpoint)
    ok = errors == 0 and precheck in (None, 200)  # a redirect is not a pass
    why = f"status before the load: {precheck}; errors by concurrency: " + ", ".join(
        f"c={c}: {summaries[c]['errors']}" for c in CONCURRENCY
    )
    out.append(
        Row(f"errors_{endpoint}", f"GET {endpoint} errors (all c)", str(errors), "0", verdict(ok), "" if ok else why)
    )
    ref, single = summaries[REFERENCE_CONCURRENCY], summaries[1]
    p99_why = (
        f"{workers} gunicorn workers x {threads} threads: {REFERENCE_CONCURRENCY} connections queue "
        f"~{REFERENCE_CONCURRENCY / max(1, slots):g} deep on 2 cores shared with wrk and the database "
        f"(p50 at c=1: {fmt(single['p50_ms'], 'ms')}); {busy}"
    )
    metric = f"GET {endpoint} p99 @ c={REFERENCE_CONCURRENCY}"
    out.append(judged(f"p99_{endpoint}", metric, ref["p99_ms"], t["p99_ms"], unit="ms", why=p99_why))
    ceiling_why = (
        f"per request the site costs {fmt(single['p50_ms'], 'ms')} at c=1 vs the trivial app's "
        f"{fmt(ceiling[1]['p50_ms'], 'ms')}: Django middleware"
        + (" and the database round trips" if endpoint != "/health" else "")
        + "; the database server runs on the same cores; caching the page, or more cores"
    )
    ratio = percent(ref["rps"], ceiling[REFERENCE_CONCURRENCY]["rps"])
    metric = f"GET {endpoint} throughput / trivial app @ c={REFERENCE_CONCURRENCY}"
    out.append(
        judged(
            f"ceiling_{endpoint}",
            metric,
            ratio,
            t["ceiling_ratio"] * 100,
            unit="%",
            digits=0,
            at_least=True,
            why=ceiling_why,
        )
    )
    return out


SECTION = Section("serve", "prod under load vs a trivial app with the same gunicorn", measure, rows, SERVE_TARGETS)
