"""The cluster on this machine: `nox -s cluster` on tests/cluster/test_cluster.py once (root, minutes), and the
numbers those tests write to reports/cluster.json: time to converge on 3 nodes, failed requests when a worker dies
under load, rescheduling and rejoin times."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.context import Bench, Section
from bench.evaluate import Results, Row, fmt, judged, load_hint

REPORT = Path("reports") / "cluster.json"
IN_FLIGHT = 4  # the load's connections in tests/cluster: at most this many requests are on the node that dies
CLUSTER_TARGETS = {
    "cluster_converge_s": 30.0,
    "cluster_failed_requests": float(IN_FLIGHT),
    "cluster_reschedule_s": 60.0,
}


def measure(bench: Bench) -> dict[str, Any]:
    report = bench.settings.root / REPORT
    report.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "nox", "-s", "cluster", "--", "tests/cluster/test_cluster.py"]
    seconds, result = bench.time_process(argv, warn=True)
    numbers = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
    return {"seconds": seconds, "status": result.return_code, **numbers}


def rows(cluster: Mapping[str, Any], results: Results) -> list[Row]:
    failed = cluster.get("node_down_failed_requests")
    rows = [
        Row("cluster_up", "invoke cluster.up: 3 engines, swarm, registry", fmt(cluster.get("up_seconds"))),
        judged("cluster_converge", "3 replicas running on 3 nodes, pulled from the registry",
               cluster.get("converge_3_nodes_seconds"), CLUSTER_TARGETS["cluster_converge_s"], why=load_hint(results)),
        judged("cluster_failed_requests",
               f"failed requests when a worker dies under load (of {cluster.get('node_down_requests', '?')}; "
               f"{cluster.get('node_down_connection_errors', '?')} connection errors retried)",
               failed, CLUSTER_TARGETS["cluster_failed_requests"], unit="", digits=0,
               why="more than the requests in flight on that node: the client kept using a dead address"),
        judged("cluster_reschedule", "the dead worker's replica running again on the others",
               cluster.get("reschedule_seconds"), CLUSTER_TARGETS["cluster_reschedule_s"],
               why="Swarm marks a node down after missed heartbeats; " + load_hint(results)),
        Row("cluster_rejoin", "the worker Ready again after its engine restarts", fmt(cluster.get("rejoin_seconds"))),
    ]  # fmt: skip
    if cluster.get("status"):  # numbers from a failing run prove nothing
        for row in rows:
            if row.status == "PASS":
                row.status, row.why = "MISS", f"nox -s cluster exited {cluster['status']}; see its output"
    return rows


SECTION = Section("cluster", "the 3-node cluster: converge, a worker dying under load, rescheduling", measure, rows,
                  CLUSTER_TARGETS)  # fmt: skip
