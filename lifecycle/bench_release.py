"""Benchmark measures for releases and the HTTPS proxy, in the bench's result and row shapes.

Not yet a section of `nox -s bench` (lifecycle/bench.py is being split into a package): `Bench` calls
`measure_pushes(settings, run, rebuild)` and `measure_proxy_cost(load, app_url, https_url)` from its sections,
stores the dicts under results["release"] and results["proxy"], and `evaluate` appends `rows(results)`.

- Pushes: a first push of the prod image to a local registry of the bench's own (REGISTRY_PORT), then a push
  after a code-only rebuild; seconds, and the bytes and blobs the registry's storage gained (what was uploaded).
- Proxy cost: /health and /api/notes at 16 connections through the proxy (HTTPS) against straight to gunicorn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lifecycle import compose as cmd
from lifecycle import registry
from lifecycle.bench.evaluate import Row
from lifecycle.bench.sections.serve import ENDPOINTS, REFERENCE_CONCURRENCY
from lifecycle.runner import Runner
from lifecycle.settings import Settings
from lifecycle.stages import PROD

CODE_ONLY_SHARE_TARGET = 0.05  # a code-only push uploads at most 5 % of the first push's bytes
PROXY_THROUGHPUT_TARGET = 0.85  # through the proxy: at least 85 % of the direct throughput


@dataclass(frozen=True)
class PushCost:
    seconds: float
    bytes: int  # what the registry's storage gained: the bytes uploaded
    blobs: int


def stored_blobs(settings: Settings, run: Runner) -> dict[str, int]:
    done = run(registry.blob_sizes_argv(settings), env=settings.env, capture=True)
    return registry.parse_blob_sizes(done.stdout)


def timed_push(settings: Settings, run: Runner, image: str, target: str) -> PushCost:
    before = stored_blobs(settings, run)
    run(cmd.tag_argv(image, target))
    started = time.perf_counter()
    run(cmd.push_argv(target), capture=True)
    seconds = time.perf_counter() - started
    added = registry.blob_delta(before, stored_blobs(settings, run))
    return PushCost(round(seconds, 2), added.bytes, added.blobs)


def measure_pushes(settings: Settings, run: Runner, rebuild_code_only: Callable[[], None]) -> dict[str, Any]:
    """First push of prod, then a push after `rebuild_code_only()` (one .py changed, prod rebuilt); the local
    registry and what was pushed are removed afterwards."""
    repository = settings.release_repository
    registry.start(settings, run)
    try:
        first = timed_push(settings, run, settings.image(PROD), f"{repository}:bench-first")
        rebuild_code_only()
        code_only = timed_push(settings, run, settings.image(PROD), f"{repository}:bench-code-only")
    finally:
        run(registry.down_argv(settings, volumes=True), env=settings.env, warn=True)
        for tag in ("bench-first", "bench-code-only"):
            run(cmd.docker_argv("image", "rm", f"{repository}:{tag}"), warn=True, capture=True)
    return {"first": asdict(first), "code_only": asdict(code_only)}


def measure_proxy_cost(load: Callable[[str, int], Mapping[str, Any]], app_url: str, https_url: str) -> dict[str, Any]:
    """load(url, connections) -> wrk's result shape; each endpoint straight to gunicorn, then through the proxy."""
    return {
        endpoint: {
            "direct": dict(load(app_url.rstrip("/") + endpoint, REFERENCE_CONCURRENCY)),
            "proxied": dict(load(https_url.rstrip("/") + endpoint, REFERENCE_CONCURRENCY)),
        }
        for endpoint in ENDPOINTS
    }


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def rows(results: Mapping[str, Any]) -> list[Row]:
    found = []
    pushes = results.get("release")
    if pushes:
        first, code = pushes["first"], pushes["code_only"]
        share = code["bytes"] / first["bytes"] if first["bytes"] else None
        found += [
            Row("push_first", "release push, first (prod image to an empty registry)",
                f"{first['seconds']:.1f} s, {_mb(first['bytes'])} in {first['blobs']} blobs"),
            Row("push_code_only", "release push after a code-only change",
                f"{code['seconds']:.1f} s, {_mb(code['bytes'])} in {code['blobs']} blobs"
                + (f" ({share:.1%} of the first)" if share is not None else ""),
                f"≤ {CODE_ONLY_SHARE_TARGET:.0%} of the first",
                "n/a" if share is None else ("PASS" if share <= CODE_ONLY_SHARE_TARGET else "MISS")),
        ]  # fmt: skip
    for endpoint, pair in (results.get("proxy") or {}).items():
        ratio = pair["proxied"]["rps"] / pair["direct"]["rps"] if pair["direct"]["rps"] else None
        value = (f"{pair['proxied']['rps']:.0f} vs {pair['direct']['rps']:.0f} req/s direct"
                 + (f" ({ratio:.0%})" if ratio is not None else "")
                 + f"; p99 {pair['proxied']['p99_ms']} vs {pair['direct']['p99_ms']} ms")  # fmt: skip
        status = "n/a" if ratio is None else ("PASS" if ratio >= PROXY_THROUGHPUT_TARGET else "MISS")
        found.append(Row(f"proxy_{endpoint.strip('/').replace('/', '_')}",
                         f"`{endpoint}` through the HTTPS proxy @{REFERENCE_CONCURRENCY}", value,
                         f"≥ {PROXY_THROUGHPUT_TARGET:.0%} of direct", status))  # fmt: skip
    return found
