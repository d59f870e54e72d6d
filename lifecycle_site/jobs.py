"""Scheduled jobs, the pure part the app image carries (stdlib only): cron schedules, the declarations'
checks, and which slots a scheduler runs, makes up or skips (lifecycle_site/scheduler.py runs them;
lifecycle/jobs.py reads the declarations from pyproject.toml).

    [[tool.lifecycle.jobs]]
    name = "clearsessions"
    schedule = "0 3 * * *"          # cron: minute hour day-of-month month day-of-week
    command = "clearsessions"       # a manage.py command, with its arguments
    timeout = 600                   # seconds (default 300)
    missed = "once"                 # a slot missed while no scheduler ran: "skip" (default) or "once" (run late)

A schedule of six fields starts with seconds (`*/10 * * * * *`: every 10 s).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

RUNS_TABLE = "lifecycle_job_runs"  # the scheduler's rows: one per (job, slot, manual)
POLICIES = ("skip", "once")
DEFAULT_TIMEOUT = 300
NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
SEARCH_YEARS = 5  # a schedule that matches nothing within this long (Feb 30) is refused
GRACE = 10  # seconds: a slot older than this that nobody claimed was missed (no scheduler ran)
MAX_RECORDED = 1000  # missed slots recorded one row each; older ones are only counted in the log
# Under "once", each missed slot runs once, late, oldest first: those of the last LATE_WINDOW seconds, at most the
# newest MAX_LATE of them (a scheduler down for a week does not start a week of a minutely job's runs); older
# missed slots are recorded "skipped" and logged.
LATE_WINDOW = 24 * 3600
MAX_LATE = 60
# field: (lowest, highest); day of week 0-7, both 0 and 7 being Sunday, as cron has it
FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
          ("day of week", 0, 7))  # fmt: skip


class JobError(ValueError):
    """A declaration that is wrong: the one line to show."""


# ------------------------------------------------------------------------------------------ cron
@dataclass(frozen=True)
class Schedule:
    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday ... 6 = Sunday (Python's)
    any_day: bool  # day of month was *
    any_weekday: bool  # day of week was *

    def day_matches(self, day: dt.date) -> bool:
        """cron's rule: with both day fields restricted, either one matching is enough."""
        by_day, by_weekday = day.day in self.days, day.weekday() in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first scheduled time strictly after moment (same time zone)."""
        candidate = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
        limit = moment + dt.timedelta(days=366 * SEARCH_YEARS)
        while candidate < limit:
            if candidate.month not in self.months:
                year, month = divmod(candidate.month, 12)
                candidate = candidate.replace(year=candidate.year + year, month=month + 1, day=1, hour=0, minute=0,
                                              second=0)  # fmt: skip
            elif not self.day_matches(candidate.date()):
                candidate = (candidate + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + dt.timedelta(hours=1)).replace(minute=0, second=0)
            elif candidate.minute not in self.minutes:
                candidate = (candidate + dt.timedelta(minutes=1)).replace(second=0)
            elif candidate.second not in self.seconds:
                candidate += dt.timedelta(seconds=1)
            else:
                return candidate
        raise JobError(f"schedule {self.text!r} never runs (nothing within {SEARCH_YEARS} years)")

    def times_between(self, after: dt.datetime, until: dt.datetime, limit: int = 100_000) -> list[dt.datetime]:
        """The scheduled times in (after, until], oldest first (at most limit)."""
        found: list[dt.datetime] = []
        moment = after
        while len(found) < limit:
            moment = self.next_after(moment)
            if moment > until:
                break
            found.append(moment)
        return found


def parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        if (step_text and not step_text.isdigit()) or step_text == "0":
            raise JobError(f"cron {name} {text!r}: the step {step_text!r} is not a whole number above 0")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif re.fullmatch(r"\d+-\d+", body):
            start, end = (int(value) for value in body.split("-"))
        elif body.isdigit():
            start = end = int(body)
            if step_text:
                end = high
        else:
            raise JobError(f"cron {name} {text!r}: {part!r} is not *, N, N-M or a step of one of them")
        if not low <= start <= end <= high:
            raise JobError(f"cron {name} {text!r}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_schedule(text: str) -> Schedule:
    """Five cron fields (minute hour day month weekday), or six with seconds first."""
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise JobError(f"schedule {text!r} is not cron: five fields (minute hour day month weekday), or six")
    sets = [parse_field(part, name, low, high) for part, (name, low, high) in zip(parts, FIELDS, strict=True)]
    weekdays = frozenset((day - 1) % 7 for day in sets[5])  # cron 0/7 = Sunday -> 6; 1 = Monday -> 0
    return Schedule(text, *sets[:5], weekdays, any_day=parts[3] == "*", any_weekday=parts[5] == "*")


# ------------------------------------------------------------------------------------------ which slots to run
@dataclass(frozen=True)
class Plan:
    actions: list[tuple[dt.datetime, str]]  # oldest first
    dropped: int = 0


def plan(schedule: Schedule, policy: str, last: dt.datetime, now: dt.datetime, grace: float = GRACE) -> Plan:
    """The slots in (last, now] and what to do with each: "run" (due within `grace`), or for an older one, missed
    while no scheduler ran: under policy "once" each runs "late" (those within LATE_WINDOW, the newest MAX_LATE),
    any other one "skip". Only the newest MAX_RECORDED missed slots are returned; `dropped` counts the older ones
    (each is logged, not recorded)."""
    slots = schedule.times_between(last, now)
    cutoff = now - dt.timedelta(seconds=grace)
    missed = [slot for slot in slots if slot < cutoff]
    due = [(slot, "run") for slot in slots if slot >= cutoff]
    recorded = missed[-MAX_RECORDED:]
    late = set()
    if policy == "once":
        late = set([slot for slot in recorded if slot >= now - dt.timedelta(seconds=LATE_WINDOW)][-MAX_LATE:])
    actions = [(slot, "late" if slot in late else "skip") for slot in recorded]
    return Plan([*actions, *due], len(missed) - len(recorded))


def resume_after(schedule: Schedule, claimed: set[dt.datetime]) -> dt.datetime | None:
    """Where a starting scheduler resumes: just before the oldest slot with no row between the first and the last
    of `claimed` (the recent rows: a scheduler that stopped or vanished may leave a hole below the last claimed slot,
    another one having claimed later slots), else at the last one. None without rows."""
    if not claimed:
        return None
    first, last = min(claimed), max(claimed)
    holes = [slot for slot in schedule.times_between(first, last) if slot not in claimed]
    return holes[0] - dt.timedelta(seconds=1) if holes else last


# ------------------------------------------------------------------------------------------ declarations
@dataclass(frozen=True)
class Job:
    name: str
    schedule: Schedule
    command: tuple[str, ...]  # manage.py's arguments
    timeout: int = DEFAULT_TIMEOUT
    missed: str = "skip"


def parse_job(entry: Mapping[str, object], number: int) -> Job:
    where = f"[[tool.lifecycle.jobs]] #{number}"
    unknown = sorted(set(entry) - {"name", "schedule", "command", "timeout", "missed"})
    if unknown:
        raise JobError(f"{where} has {', '.join(unknown)}, not a job key (name, schedule, command, timeout, missed)")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise JobError(f"{where}: name {name!r} must be lowercase letters, digits, - or _ (e.g. clearsessions)")
    where = f"job {name!r}"
    schedule = entry.get("schedule")
    if not isinstance(schedule, str):
        raise JobError(f'{where}: schedule must be a cron string, e.g. "0 3 * * *"')
    command = entry.get("command")
    argv = shlex.split(command) if isinstance(command, str) else []
    if not argv or argv[0] in ("python", "python3", "manage.py"):
        raise JobError(f'{where}: command must be a manage.py command with its arguments, e.g. "clearsessions"')
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise JobError(f"{where}: timeout {timeout!r} is not a whole number of seconds above 0")
    missed = entry.get("missed", "skip")
    if missed not in POLICIES:
        raise JobError(f"{where}: missed {missed!r} is not one of {', '.join(POLICIES)}")
    try:
        parsed = parse_schedule(schedule)
    except JobError as error:
        raise JobError(f"{where}: {error}") from None
    return Job(name, parsed, tuple(argv), timeout, str(missed))


def parse_jobs(entries: object) -> list[Job]:
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise JobError("tool.lifecycle.jobs must be an array of tables: [[tool.lifecycle.jobs]]")
    jobs = [parse_job(entry, number) for number, entry in enumerate(entries, start=1)]
    names = [job.name for job in jobs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise JobError(f"job {twice[0]!r} is declared twice in [[tool.lifecycle.jobs]]; names must be unique")
    return jobs


def to_json(entries: object) -> str:
    """The declarations as the scheduler's JOBS variable gets them (checked first)."""
    parse_jobs(entries)
    return json.dumps(entries or [], separators=(",", ":"), sort_keys=True)


def from_json(text: str) -> list[Job]:
    try:
        return parse_jobs(json.loads(text or "[]"))
    except json.JSONDecodeError as error:
        raise JobError(
            f"JOBS is not JSON ({error}); it is set by the task suite from [[tool.lifecycle.jobs]]"
        ) from None
