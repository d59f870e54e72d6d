"""Scheduled jobs on the host: the declarations of `[[tool.lifecycle.jobs]]` in pyproject.toml (checked by the
pure part the image carries too, lifecycle_site/jobs.py), the JOBS variable the scheduler gets, and the listing
of `invoke jobs.list` from the declarations and the runs the scheduler recorded (lifecycle_site/scheduler.py)."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UserError
from lifecycle_site.jobs import RUNS_TABLE, Job, JobError, parse_jobs, to_json

PYPROJECT = Path("pyproject.toml")


def declared(root: Path) -> object:
    """The raw `[[tool.lifecycle.jobs]]` entries (None when there are none)."""
    path = root / PYPROJECT
    if not path.is_file():
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("lifecycle", {})
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{PYPROJECT} is not valid TOML: {error}; fix it") from None
    return table.get("jobs")


def read_jobs(root: Path) -> list[Job]:
    try:
        return parse_jobs(declared(root))
    except JobError as error:
        raise UserError(str(error)) from None


def jobs_variable(root: Path) -> str:
    """JOBS for the scheduler (compose and the stack): the declarations as JSON; empty when none."""
    try:
        return to_json(declared(root)) if declared(root) else ""
    except JobError as error:
        raise UserError(str(error)) from None


def parse_runs(text: str) -> dict[str, Mapping[str, object]]:
    """The scheduler's `last` answer (one JSON object per job) by job name; lines that are not JSON are left out."""
    runs: dict[str, Mapping[str, object]] = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("job"), str):
            runs[row["job"]] = row
    return runs


def last_run(row: Mapping[str, object] | None) -> str:
    if row is None:
        return "last: never"
    duration = row.get("duration_ms")
    took = f" in {int(duration) / 1000:.1f}s" if isinstance(duration, int) else ""
    return f"last: {row.get('slot')} {row.get('status')}{took}"


def listing(
    jobs: Sequence[Job], now: dt.datetime, runs: Mapping[str, Mapping[str, object]] | None = None, note: str = ""
) -> list[str]:
    """One line per job; `runs` (the scheduler's rows) adds the last run, its result and duration, else `note`
    says why there are none."""
    if not jobs:
        return ["no jobs declared; add [[tool.lifecycle.jobs]] to pyproject.toml (docs/operating.md)"]
    lines = [
        f"{job.name}  {job.schedule.text}  manage.py {shlex.join(job.command)}  timeout {job.timeout}s  "
        f"missed: {job.missed}  next: {job.schedule.next_after(now):%Y-%m-%d %H:%M:%S %Z}  "
        + (last_run(runs.get(job.name)) if runs is not None else "last: unknown")
        for job in jobs
    ]
    return lines + ([note] if note and runs is None else [])


# ------------------------------------------------------------------------------------------ invoke status
SUCCEEDED = ("ok", "late-ok")
TROUBLE = ("failed", "timeout", "lost", "interrupted", "skipped")  # a scheduled slot that did not run well
# Each job's last finished scheduled run, and how many of its slots of the last day went wrong (read as the app's
# user in the db container: lifecycle/commands/dbclient.py `app_query`).
SUMMARY_SQL = (
    "SELECT r.job, r.status, DATE_FORMAT(r.slot, '%Y-%m-%dT%H:%i:%sZ'), "
    f"(SELECT COUNT(*) FROM {RUNS_TABLE} p WHERE p.job = r.job AND p.manual = 0 AND p.status IN "
    f"({', '.join(repr(status) for status in TROUBLE)}) AND p.slot > UTC_TIMESTAMP() - INTERVAL 1 DAY) "
    f"FROM {RUNS_TABLE} r WHERE r.manual = 0 AND r.slot = (SELECT MAX(m.slot) FROM {RUNS_TABLE} m "
    "WHERE m.job = r.job AND m.manual = 0 AND m.status NOT IN ('running', 'skipped'))"
)


@dataclass(frozen=True)
class LastRun:
    status: str
    slot: str  # ISO, UTC
    troubles: int  # slots of the last day that failed, timed out, were lost, interrupted or skipped


def parse_summary(text: str) -> dict[str, LastRun]:
    """SUMMARY_SQL's tab-separated rows by job; other lines are left out."""
    found = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[3].isdigit():
            found[parts[0]] = LastRun(parts[1], parts[2], int(parts[3]))
    return found


def no_runs_table(error_text: str) -> bool:
    """The query failed because no scheduler has made the table yet (no run yet, not a fault)."""
    return RUNS_TABLE in error_text and "doesn't exist" in error_text
