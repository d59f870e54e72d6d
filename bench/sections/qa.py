"""`nox -s qa` as a user runs it (images built), under the bench's settings; reports/ is put back after."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from bench.context import Bench, Section
from bench.evaluate import Results, Row, judged, load_hint, median
from lifecycle.local import QA_REPORT_FILES

QA_TARGETS = {"qa_s": 30.0}


def measure(bench: Bench) -> dict[str, Any]:
    reports = bench.settings.root / "reports"
    saved = {name: (reports / name).read_bytes() for name in QA_REPORT_FILES if (reports / name).is_file()}
    seconds, statuses = [], []
    try:
        for _ in range(bench.runs):
            elapsed, result = bench.time_process([sys.executable, "-m", "nox", "-s", "qa"], warn=True)
            seconds.append(elapsed)
            statuses.append(result.return_code)
    finally:
        for name in QA_REPORT_FILES:
            path = reports / name
            if name in saved:
                path.write_bytes(saved[name])
            else:
                path.unlink(missing_ok=True)
        bench.remember_image(bench.suite.qa_image())
    return {"seconds": seconds, "status": statuses}


def rows(qa: Mapping[str, Any], results: Results) -> list[Row]:
    seconds, statuses = median(qa.get("seconds", [])), qa.get("status", [])
    why = (
        "each qa run builds (cached), starts a fresh database on a throwaway volume (first-time init), "
        f"runs pytest; {load_hint(results)}"
    )
    row = judged("qa", "nox -s qa (images built)", seconds, QA_TARGETS["qa_s"], why=why)
    if any(statuses):  # fast but failing is no pass
        row.status, row.why = "MISS", f"pytest exit status {statuses}; see reports/"
    return [row]


SECTION = Section("qa", "nox -s qa with the images built", measure, rows, QA_TARGETS)
