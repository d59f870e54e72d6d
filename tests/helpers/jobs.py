"""Scheduled jobs under test (compose: tests/integration/test_jobs.py; the cluster: tests/cluster/
test_cluster_deploy.py): a job that writes one row per run, and the check, on the rows, that every slot ran once."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

# A manage.py command that writes one row per run: the job, the slot it was started for, and how (run, late, manual).
WRITE_ROW = (
    'shell --no-imports -c \\"import os; from django.db import connection as c; k = c.cursor(); '
    "k.execute('CREATE TABLE IF NOT EXISTS job_ticks (id INT AUTO_INCREMENT PRIMARY KEY, job VARCHAR(63), "
    "slot VARCHAR(32), how VARCHAR(16))'); k.execute('INSERT INTO job_ticks (job, slot, how) VALUES (%s, %s, %s)', "
    "[os.environ['JOB_NAME'], os.environ['JOB_SLOT'], os.environ['JOB_RUN']])\\\""
)
CLAIMS = "SELECT slot, status FROM lifecycle_job_runs WHERE job = '{job}' AND manual = 0"
WRITTEN = "SELECT slot FROM job_ticks WHERE job = '{job}' AND how <> 'manual'"
NOT_RUN = ("skipped",)
# a run in flight, one whose scheduler died, or one stopped with its scheduler: it may or may not have written
UNKNOWN = ("running", "lost", "interrupted")


def declaration(name: str, every: int, missed: str) -> str:
    """The pyproject.toml table of a job writing a row every `every` seconds."""
    return (
        f'\n[[tool.lifecycle.jobs]]\nname = "{name}"\nschedule = "*/{every} * * * * *"\ncommand = "{WRITE_ROW}"\n'
        f'timeout = 60\nmissed = "{missed}"\n'
    )


def claims(rows: Iterable[list[str]]) -> dict[dt.datetime, str]:
    """The scheduler's rows (CLAIMS's answer): slot -> status."""
    return {dt.datetime.fromisoformat(slot): status for slot, status in rows}


def exactly_once_problems(claimed: dict[dt.datetime, str], written: Iterable[str], every: int) -> list[str]:
    """What breaks "every slot between the first and the last exactly once": a slot with no row at all (silently
    lost), a slot the job wrote twice, a run the scheduler recorded that wrote nothing or the other way round."""
    first, last = min(claimed), max(claimed)
    span = int((last - first).total_seconds())
    expected = {first + dt.timedelta(seconds=step) for step in range(0, span + 1, every)}
    lost = sorted(expected - set(claimed))
    counts = Counter(written)
    twice = sorted(slot for slot, count in counts.items() if count > 1)
    ran = {f"{slot:%Y-%m-%dT%H:%M:%SZ}" for slot, status in claimed.items() if status not in NOT_RUN + UNKNOWN}
    unknown = {f"{slot:%Y-%m-%dT%H:%M:%SZ}" for slot, status in claimed.items() if status in UNKNOWN}
    disagree = sorted((ran ^ set(counts)) - unknown)
    disagree = [f"{slot} ({claimed.get(dt.datetime.fromisoformat(slot[:-1]), 'no claim')})" for slot in disagree]
    return [f"{what}: {items}" for what, items in (("lost", lost), ("ran twice", twice), ("rows disagree", disagree))
            if items]  # fmt: skip
