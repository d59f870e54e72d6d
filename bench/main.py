"""The entry point: run the sections under isolated settings, clean up, evaluate, write the reports."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import facts
from bench.context import BENCH_ZIP_DIR, Bench, failure_recorded, restored, say
from bench.evaluate import Row, carry_notes, evaluate
from bench.load import ensure_load_generator
from bench.report import render_markdown, render_table
from bench.sections import SECTIONS, TARGETS
from lifecycle import sbom
from lifecycle.runner import Runner
from lifecycle.settings import Settings
from lifecycle.stages import STAGES


def run_bench(
    settings: Settings, run: Runner, runs: int, reports: Path, *, duration: int = 10, skip: Sequence[str] = (),
    backup_mb: int = 200,
) -> list[Row]:  # fmt: skip
    """Measure every section not skipped, print the table, write reports/bench.json and reports/bench.md;
    return the rows."""
    bench = Bench(settings, run, runs, duration)
    bench.backup_mb = backup_mb
    say(f"isolated settings: PROJ_NAME={bench.name} APP_PORT={bench.settings['APP_PORT']} ZIP_DIR={BENCH_ZIP_DIR}")
    if "serve" not in skip:
        bench.tool = ensure_load_generator(run)
        if bench.tool == "python":
            say("wrk is not available; the Python load generator measures serving (its numbers are lower)")
    meta = facts.machine_facts(bench.settings, run, runs, bench.tool)
    results: dict[str, Any] = {"runs": runs, "targets": TARGETS, "meta": meta, "errors": {}}
    with contextlib.ExitStack() as users_files:  # the bench's builds write the checkout's SBOM reports and records
        for path in sbom_files(settings.root):
            users_files.enter_context(restored(path))
        try:
            for section in SECTIONS:
                if section.name not in skip:
                    bench.measure(section, results)
        finally:
            with failure_recorded("cleanup", results):
                bench.cleanup()
    meta["loadavg"] = f"{meta['loadavg_start']} / {facts.loadavg()}"
    if bench.tool == "python":
        meta["notes"].append("wrk was unavailable: the Python load generator measured serving")
    rows = evaluate(results, SECTIONS)
    return write_reports(rows, results, reports)


def sbom_files(root: Path) -> list[Path]:
    """Each stage's SBOM report and the record of the image it was copied from: the user's, put back after."""
    return [path for stage in STAGES for path in (sbom.report_path(root, stage), sbom.Record.path(root, stage))]


def write_reports(rows: list[Row], results: dict[str, Any], reports: Path) -> list[Row]:
    """bench.json (raw numbers and rows, the maintainer's notes carried over by key), bench.md, the table."""
    raw = reports / "bench.json"
    if raw.is_file():
        with contextlib.suppress(ValueError, AttributeError):
            rows = carry_notes(rows, json.loads(raw.read_text(encoding="utf-8")).get("rows", []))
    reports.mkdir(parents=True, exist_ok=True)
    results["rows"] = [asdict(row) for row in rows]
    raw.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    (reports / "bench.md").write_text(render_markdown(rows, results["meta"]), encoding="utf-8")
    print(render_table(rows))
    print(f"\nraw numbers: {raw}; markdown: {reports / 'bench.md'}")
    return rows
