"""`nox -s qa` as a user runs it (images built), under the bench's settings; reports/ is put back after."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.context import Bench, Section, append_line, restored
from bench.evaluate import Results, Row, judged, load_hint, median
from lifecycle import testmon
from lifecycle.commands import docker
from lifecycle.qa import QA_REPORT_FILES

QA_TARGETS = {"qa_s": 30.0, "qa_changed_s": 5.0}
VIEW_FILE = Path("django_site") / "notes" / "views.py"  # a one-line change here: what `qa --changed` is for


def measure(bench: Bench) -> dict[str, Any]:
    reports = bench.settings.root / "reports"
    saved = {name: (reports / name).read_bytes() for name in QA_REPORT_FILES if (reports / name).is_file()}
    seconds, statuses, changed, changed_statuses = [], [], [], []
    volume = testmon.volume(bench.settings)
    bench.undo.append(lambda: bench.run(docker.volume_rm_argv(volume), warn=True, capture=True))
    try:
        for _ in range(bench.runs):
            elapsed, result = bench.time_process([sys.executable, "-m", "nox", "-s", "qa"], warn=True)
            seconds.append(elapsed)
            statuses.append(result.return_code)
        bench.time_process(bench.invoke_argv("qa", "--changed"), warn=True)  # the first: the whole suite, recorded
        with restored(bench.settings.root / VIEW_FILE):
            for number in range(bench.runs):
                append_line(bench.settings.root / VIEW_FILE, f"BENCH_CHANGE = {time.time_ns()}  # {number}")
                elapsed, result = bench.time_process(bench.invoke_argv("qa", "--changed"), warn=True)
                changed.append(elapsed)
                changed_statuses.append(result.return_code)
    finally:
        for name in QA_REPORT_FILES:
            path = reports / name
            if name in saved:
                path.write_bytes(saved[name])
            else:
                path.unlink(missing_ok=True)
        bench.remember_image(bench.suite.qa_image())
    return {"seconds": seconds, "status": statuses, "changed": changed, "changed_status": changed_statuses}


def rows(qa: Mapping[str, Any], results: Results) -> list[Row]:
    seconds, statuses = median(qa.get("seconds", [])), qa.get("status", [])
    why = (
        "each qa run builds (cached), starts a fresh database on a throwaway volume (first-time init), "
        f"runs pytest; {load_hint(results)}"
    )
    row = judged("qa", "nox -s qa (images built)", seconds, QA_TARGETS["qa_s"], why=why)
    if any(statuses):  # fast but failing is no pass
        row.status, row.why = "MISS", f"pytest exit status {statuses}; see reports/"
    changed_why = (
        "the whole process: the code layer rebuilt, a fresh database started and torn down around the few tests "
        f"testmon selects; {load_hint(results)}"
    )
    changed = judged("qa_changed", "invoke qa --changed after a one-line view change", median(qa.get("changed", [])),
                     QA_TARGETS["qa_changed_s"], why=changed_why)  # fmt: skip
    if any(qa.get("changed_status", [])):
        changed.status, changed.why = "MISS", f"exit status {qa['changed_status']}; see reports/"
    return [row, changed]


SECTION = Section("qa", "nox -s qa with the images built", measure, rows, QA_TARGETS)
