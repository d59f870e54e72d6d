"""Scheduled jobs: cron schedules and their next run, which slots run, late or skipped, the declarations' checks,
the listing (tables)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from lifecycle import jobs
from lifecycle.errors import UserError
from lifecycle.settings import read_project_table
from lifecycle_site import jobs as pure

T = dt.datetime(2026, 12, 4, 8, 0, 0, tzinfo=dt.UTC)  # a Friday


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/10 * * * * *", "2026-12-04T08:00:00", "2026-12-04T08:00:10"),
        ("*/10 * * * * *", "2026-12-04T08:00:59", "2026-12-04T08:01:00"),
        ("* * * * *", "2026-12-04T08:00:00", "2026-12-04T08:01:00"),
        ("0 3 * * *", "2026-12-04T08:00:00", "2026-12-05T03:00:00"),
        ("30 2 1 * *", "2026-12-04T08:00:00", "2027-01-01T02:30:00"),
        ("0 0 * * 0", "2026-12-04T08:00:00", "2026-12-06T00:00:00"),  # Sunday as 0
        ("0 0 * * 7", "2026-12-04T08:00:00", "2026-12-06T00:00:00"),  # and as 7
        ("0 9 * * 1-5", "2026-12-04T09:30:00", "2026-12-07T09:00:00"),  # Friday past 9: Monday
        ("0 0 13 * 5", "2026-12-04T08:00:00", "2026-12-11T00:00:00"),  # both day fields: either (a Friday first)
        ("0 12 29 2 *", "2026-12-04T08:00:00", "2028-02-29T12:00:00"),  # a leap day
        ("15,45 */6 * * *", "2026-12-04T08:00:00", "2026-12-04T12:15:00"),
        ("0 0 1 1 *", "2026-12-31T23:59:59", "2027-01-01T00:00:00"),
    ],
)
def test_next_run(schedule, after, expected):
    assert pure.parse_schedule(schedule).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * * *", "is not cron: five fields"),
        ("60 * * * *", "outside 0-59"),
        ("* 24 * * *", "outside 0-23"),
        ("* * 0 * *", "outside 1-31"),
        ("*/0 * * * *", "step '0' is not a whole number above 0"),
        ("mon * * * *", "'mon' is not *, N, N-M"),
        ("5-1 * * * *", "outside 0-59"),
        ("0 0 30 2 *", "never runs"),
    ],
)
def test_a_bad_schedule_is_one_line(schedule, message):
    with pytest.raises(pure.JobError, match=re.escape(message)):
        pure.parse_schedule(schedule).next_after(T)


@pytest.mark.parametrize(
    ("policy", "last", "now", "actions", "dropped"),
    [
        # down since 07:59:25: :30 and :40 older than the 10 s grace were missed (each runs late, oldest first);
        # :50 is still due on time
        ("once", "07:59:25", "07:59:59", [("07:59:30", "late"), ("07:59:40", "late"), ("07:59:50", "run")], 0),
        ("skip", "07:59:25", "07:59:59", [("07:59:30", "skip"), ("07:59:40", "skip"), ("07:59:50", "run")], 0),
        ("once", "07:59:55", "07:59:59", [], 0),  # nothing was due
        ("skip", "07:59:59", "08:00:00", [("08:00:00", "run")], 0),  # the steady state: each tick, the slot due
        ("once", "07:59:50", "08:00:00.5", [("08:00:00", "run")], 0),
        # with MAX_RECORDED = 3: 07:00:10 ... 07:59:40 missed (358), the newest 3 recorded, 355 only counted; of
        # those, with MAX_LATE = 2, the newest two run late
        ("once", "07:00:00", "07:59:59",
         [("07:59:20", "skip"), ("07:59:30", "late"), ("07:59:40", "late"), ("07:59:50", "run")], 355),
        ("skip", "07:00:00", "07:59:59",
         [("07:59:20", "skip"), ("07:59:30", "skip"), ("07:59:40", "skip"), ("07:59:50", "run")], 355),
    ],
)  # fmt: skip
def test_which_slots_run_late_or_are_skipped(policy, last, now, actions, dropped, monkeypatch):
    monkeypatch.setattr(pure, "MAX_RECORDED", 3 if dropped else pure.MAX_RECORDED)
    monkeypatch.setattr(pure, "MAX_LATE", 2 if dropped else pure.MAX_LATE)
    every_10s = pure.parse_schedule("*/10 * * * * *")
    decided = pure.plan(every_10s, policy, at(f"2026-12-04T{last}"), at(f"2026-12-04T{now}"))
    assert decided.actions == [(at(f"2026-12-04T{slot}"), action) for slot, action in actions]
    assert decided.dropped == dropped


def test_only_missed_slots_of_the_last_day_run_late():
    daily = pure.parse_schedule("0 3 * * *")
    decided = pure.plan(daily, "once", at("2026-12-01T02:00:00"), at("2026-12-04T08:00:00"))
    days = ["2026-12-01", "2026-12-02", "2026-12-03"]  # more than LATE_WINDOW (a day) before now
    assert decided.actions == [*((at(f"{day}T03:00:00"), "skip") for day in days), (at("2026-12-04T03:00:00"), "late")]


def test_a_starting_scheduler_resumes_below_the_oldest_hole():
    every_10s = pure.parse_schedule("*/10 * * * * *")
    slots = {at(f"2026-12-04T08:00:{second:02d}") for second in (0, 10, 20, 40, 50)}  # :30 has no row
    assert pure.resume_after(every_10s, slots) == at("2026-12-04T08:00:29")
    assert pure.resume_after(every_10s, slots | {at("2026-12-04T08:00:30")}) == at("2026-12-04T08:00:50")
    assert pure.resume_after(every_10s, set()) is None


def test_the_declarations_reach_the_scheduler_as_json(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.lifecycle.jobs]]\nname = "rows"\nschedule = "*/10 * * * * *"\ncommand = "write_row"\nmissed = "once"\n',
        encoding="utf-8",
    )
    variable = jobs.jobs_variable(tmp_path)
    assert [(job.name, job.missed) for job in pure.from_json(variable)] == [("rows", "once")]
    assert jobs.jobs_variable(tmp_path / "nowhere") == ""
    with pytest.raises(pure.JobError, match="JOBS is not JSON"):
        pure.from_json("{")


def test_a_job_declaration():
    job = pure.parse_job({"name": "rows", "schedule": "*/10 * * * * *", "command": "write_row --tag 'a b'",
                          "timeout": 30, "missed": "once"}, 1)  # fmt: skip
    assert (job.name, job.command, job.timeout, job.missed) == ("rows", ("write_row", "--tag", "a b"), 30, "once")
    assert pure.parse_job({"name": "x", "schedule": "0 3 * * *", "command": "clearsessions"}, 1).missed == "skip"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Rows!", "schedule": "* * * * *", "command": "x"}, "name 'Rows!' must be lowercase"),
        ({"name": "a", "schedule": 5, "command": "x"}, "schedule must be a cron string"),
        ({"name": "a", "schedule": "* * * * *", "command": "python manage.py x"}, "command must be a manage.py"),
        ({"name": "a", "schedule": "* * * * *", "command": ""}, "command must be a manage.py"),
        ({"name": "a", "schedule": "* * * * *", "command": "x", "timeout": 0}, "timeout 0 is not"),
        ({"name": "a", "schedule": "* * * * *", "command": "x", "timeout": True}, "timeout True is not"),
        ({"name": "a", "schedule": "* * * * *", "command": "x", "missed": "twice"}, "missed 'twice' is not one of"),
        ({"name": "a", "schedule": "* * *", "command": "x"}, "job 'a': schedule"),
        ({"name": "a", "schedule": "* * * * *", "command": "x", "cron": 1}, "has cron, not a job key"),
    ],
)
def test_a_bad_declaration_is_one_line(entry, message):
    with pytest.raises(pure.JobError, match=re.escape(message)):
        pure.parse_job(entry, 1)


def test_jobs_in_pyproject_are_read_and_are_not_settings(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lifecycle]\nproj-name = "shop"\n\n[[tool.lifecycle.jobs]]\nname = "rows"\nschedule = "*/10 * * * * *"\n'
        'command = "write_row"\n\n[[tool.lifecycle.jobs]]\nname = "rows"\nschedule = "0 3 * * *"\ncommand = "y"\n',
        encoding="utf-8",
    )
    assert read_project_table(tmp_path) == {"PROJ_NAME": "shop"}
    with pytest.raises(UserError, match="job 'rows' is declared twice"):
        jobs.read_jobs(tmp_path)


def test_listing_shows_the_next_and_the_last_run():
    job = pure.parse_job({"name": "rows", "schedule": "*/10 * * * * *", "command": "write_row"}, 1)
    head = "rows  */10 * * * * *  manage.py write_row  timeout 300s  missed: skip  next: 2026-12-04 08:00:10 UTC  "
    assert jobs.listing([job], T, note="no scheduler running: invoke up --stage prod") == [
        head + "last: unknown", "no scheduler running: invoke up --stage prod"]  # fmt: skip
    runs = jobs.parse_runs('noise\n{"job": "rows", "slot": "2026-12-04 07:59:50", "status": "ok", "duration_ms": 1234}')
    assert jobs.listing([job], T, runs) == [head + "last: 2026-12-04 07:59:50 ok in 1.2s"]
    assert jobs.listing([job], T, {}) == [head + "last: never"]
    assert "no jobs declared" in jobs.listing([], T)[0]
