"""lifecycle.bench_release's pure half: rows and targets from measured results, and the push measure's sequence."""

from __future__ import annotations

import pytest
from conftest import RecordingRunner

from lifecycle import bench_release
from lifecycle.runner import Result
from lifecycle.settings import load_settings

BLOBS = "/var/lib/registry/docker/registry/v2/blobs/sha256"


def load_result(rps: float, p99: float = 10.0) -> dict:
    return {"rps": rps, "p99_ms": p99, "errors": 0}


@pytest.mark.parametrize(
    ("code_bytes", "status"),
    [pytest.param(2_000_000, "PASS", id="code-layers-only"), pytest.param(30_000_000, "MISS", id="too-much")],
)
def test_push_rows(code_bytes, status):
    results = {"release": {"first": {"seconds": 4.2, "bytes": 80_000_000, "blobs": 14},
                           "code_only": {"seconds": 0.8, "bytes": code_bytes, "blobs": 4}}}  # fmt: skip
    first, code = bench_release.rows(results)
    assert first.value == "4.2 s, 80.0 MB in 14 blobs"
    assert (code.status, code.target) == (status, "≤ 5% of the first")


@pytest.mark.parametrize(
    ("proxied", "status"), [pytest.param(900.0, "PASS", id="90-percent"), pytest.param(800.0, "MISS", id="80-percent")]
)
def test_proxy_rows(proxied, status):
    results = {"proxy": {"/health": {"direct": load_result(1000.0), "proxied": load_result(proxied)}}}
    (row,) = bench_release.rows(results)
    assert (row.key, row.status) == ("proxy_health", status)
    assert f"{proxied:.0f} vs 1000 req/s direct" in row.value


def test_no_results_no_rows():
    assert bench_release.rows({}) == []


def test_timed_push_counts_what_the_registry_gained(tmp_path):
    listings = iter(
        [f"10 {BLOBS}/aa/aa/data\n", f"10 {BLOBS}/aa/aa/data\n7 {BLOBS}/bb/bb/data\n5 {BLOBS}/cc/cc/data\n"]
    )
    run = RecordingRunner()
    run.default = Result(0)
    settings = load_settings(root=tmp_path, environ={"REGISTRY_PORT": "5401"})

    def answer(argv, **kwargs):
        result = RecordingRunner.__call__(run, argv, **kwargs)
        return Result(0, next(listings)) if "find" in argv else result

    cost = bench_release.timed_push(settings, answer, "shop:prod", "127.0.0.1:5401/shop:bench-first")
    assert (cost.bytes, cost.blobs) == (12, 2)
    assert ["docker", "push", "127.0.0.1:5401/shop:bench-first"] in run.calls
