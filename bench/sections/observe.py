"""What operating it costs: /health and /api/notes at 16 connections with the app's /metrics and JSON logs on (the
defaults) against off (LAYER_METRICS=false, LOG_FORMAT=text), the same prod image, the two alternating run after run
so the machine's drifting load falls on both alike; and `invoke status` as a user runs it, against that stack."""

from __future__ import annotations

import json
import statistics
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from bench.context import Bench, Section, say, timed
from bench.evaluate import Results, Row, fmt, judged, load_hint, median
from bench.load import HTTPS_HEADER, http_status
from bench.sections.serve import ENDPOINTS, REFERENCE_CONCURRENCY, SEED_NOTES, WARM_UP_S, serving_summary
from lifecycle.local import Local
from lifecycle.stages import PROD

OBSERVE_TARGETS = {"observe_cost_pct": 5.0, "status_s": 2.0}
VARIANTS = {
    "on": {"LAYER_METRICS": "true", "LOG_FORMAT": "json"},
    "off": {"LAYER_METRICS": "false", "LOG_FORMAT": "text"},
}


def measure(bench: Bench) -> dict[str, Any]:
    bench.ensure_image(PROD)
    measured: dict[str, Any] = {variant: {endpoint: [] for endpoint in ENDPOINTS} for variant in VARIANTS}
    measured.update(status=[], status_probes=[], status_exit=[], metrics_bytes=None)
    base_url = bench.suite.app_url().rstrip("/")
    for number in range(bench.runs):
        for variant, environment in VARIANTS.items():
            suite = Local(bench.ctx.with_settings(bench.settings.override(**environment)))
            suite.up(PROD, build=False)  # a changed environment recreates the app's container
            if number == 0 and variant == "on":
                seed_notes(base_url)
                measured["metrics_bytes"] = len(metrics_page(base_url))
            for endpoint in ENDPOINTS:
                bench.load(base_url + endpoint, REFERENCE_CONCURRENCY, WARM_UP_S)
                measured[variant][endpoint].append(bench.load(base_url + endpoint, REFERENCE_CONCURRENCY))
        time_status(bench, measured)  # the stack runs (metrics off: the last variant); status reads, changes nothing
    return measured  # Bench.measure takes the stack down


def seed_notes(base_url: str) -> None:
    for number in range(SEED_NOTES):
        body = json.dumps({"text": f"observe note {number}"}).encode()
        http_status(base_url + "/api/notes", [HTTPS_HEADER], data=body)


def metrics_page(base_url: str) -> bytes:
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
        return response.read()


def time_status(bench: Bench, measured: dict[str, Any]) -> None:
    """`invoke status --json`, the whole process (interpreter and invoke's start included) and its probes alone."""
    argv = bench.invoke_argv("status", "--json")
    seconds, result = timed(lambda: bench.run(argv, env=bench.process_env(), warn=True, capture=True))
    say(f"invoke status --json: {seconds:.2f} s, exit {result.return_code}")
    measured["status"].append(seconds)
    measured["status_exit"].append(result.return_code)  # 1 when a line needs fixing (no backup yet): still timed
    try:
        measured["status_probes"].append(json.loads(result.stdout or "{}").get("seconds"))
    except ValueError:
        say(f"invoke status printed no JSON: {(result.stdout or '')[:200]}")


def spread_pct(samples: Sequence[Mapping[str, Any]]) -> float | None:
    """How far one variant's runs disagree among themselves (relative standard deviation of req/s): the noise."""
    values = [s["rps"] for s in samples if s.get("rps")]
    return statistics.stdev(values) / statistics.mean(values) * 100 if len(values) > 1 else None


def rows(measured: Mapping[str, Any], results: Results) -> list[Row]:
    out: list[Row] = []
    for endpoint in ENDPOINTS:
        on, off = (serving_summary(measured.get(v, {}).get(endpoint, [])) for v in VARIANTS)
        out.append(
            Row(
                f"observe_{endpoint}",
                f"GET {endpoint} @ c={REFERENCE_CONCURRENCY}: metrics + JSON logs on vs off",
                f"{fmt(on['rps'], 'req/s', 0)} vs {fmt(off['rps'], 'req/s', 0)}; p99 {fmt(on['p99_ms'], 'ms')} vs "
                f"{fmt(off['p99_ms'], 'ms')}; {on['errors']} + {off['errors']} errors",
            )
        )
        cost = (off["rps"] - on["rps"]) / off["rps"] * 100 if on["rps"] and off["rps"] else None
        noise = max((spread_pct(measured.get(v, {}).get(endpoint, [])) or 0 for v in VARIANTS), default=0)
        why = (
            "django-prometheus's middleware and query timing, the workers' metric files and JSON log lines per "
            f"request; the runs of one variant disagree by up to {noise:.0f} % among themselves on this machine; "
            f"{load_hint(results)}"
        )
        metric = f"GET {endpoint} throughput lost to metrics and JSON logs"
        out.append(
            judged(f"observe_cost_{endpoint}", metric, cost, OBSERVE_TARGETS["observe_cost_pct"], unit="%", why=why)
        )
    if measured.get("metrics_bytes"):
        out.append(Row("observe_metrics_page", "the app's /metrics page", f"{measured['metrics_bytes']} bytes"))
    whole, probes = median(measured.get("status", [])), median(measured.get("status_probes", []))
    why = (
        f"probes {fmt(probes)} of it; the rest is Python and invoke starting (importing the suite); "
        f"{load_hint(results)}"
    )
    out.append(
        judged(
            "status_time",
            "invoke status (whole process, prod up)",
            whole,
            OBSERVE_TARGETS["status_s"],
            digits=2,
            why=why,
        )
    )
    out.append(Row("status_probes", "invoke status: its probes alone (its --json seconds)", fmt(probes, "s", 2)))
    return out


SECTION = Section("observe", "metrics and JSON logs on vs off; invoke status's time", measure, rows, OBSERVE_TARGETS)
