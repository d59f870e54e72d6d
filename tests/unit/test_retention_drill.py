"""lifecycle.retention (which scheduled backups stay) and lifecycle.drill's decisions, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lifecycle import drill, retention
from lifecycle.backup_file import Manifest
from lifecycle.errors import UserError

START = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)  # a Monday


def hours(*offsets: float) -> list[datetime]:
    return [START + timedelta(hours=offset) for offset in offsets]


@pytest.mark.parametrize(
    ("times", "counts", "kept"),
    [
        pytest.param([], (24, 7, 4), [], id="nothing"),
        pytest.param(hours(0), (0, 0, 0), hours(0), id="the newest is always kept"),
        pytest.param(hours(0, 0.25, 0.5, 1), (2, 0, 0), hours(0.25, 1), id="hourly: the newest of each hour"),
        pytest.param(hours(*range(48)), (3, 0, 0), hours(45, 46, 47), id="hourly: the last three hours"),
        pytest.param(hours(*range(0, 72, 6)), (0, 2, 0), hours(42, 66), id="daily: the newest of each of two days"),
        pytest.param(hours(*range(0, 24 * 21, 24)), (0, 0, 2), hours(24 * 13, 24 * 20), id="weekly: ISO weeks"),
        pytest.param(
            hours(*range(0, 24 * 14, 3)),
            (2, 2, 2),
            hours(24 * 6 + 21, 24 * 12 + 21, 24 * 13 + 18, 24 * 13 + 21),
            id="the rules together: a backup kept by one is kept",
        ),
        pytest.param(hours(0, 5), (5, 0, 0), hours(0, 5), id="gaps: counted in hours that have a backup"),
    ],
)
def test_retention_keeps_the_newest_of_each_period(times, counts, kept):
    hourly, daily, weekly = counts
    assert sorted(retention.to_keep(times, hourly=hourly, daily=daily, weekly=weekly)) == kept
    pruned = retention.to_prune(times, hourly=hourly, daily=daily, weekly=weekly)
    assert sorted(pruned + kept) == sorted(times) and not set(pruned) & set(kept)


def test_retention_buckets_are_utc_whatever_the_zone_given():
    east = timezone(timedelta(hours=5))
    times = [datetime(2026, 12, 1, 1, 0, tzinfo=east), datetime(2026, 12, 1, 6, 0, tzinfo=east)]  # 30 Nov, 1 Dec UTC
    assert len(retention.to_keep(times, hourly=0, daily=2, weekly=0)) == 2


def manifest(project: str) -> Manifest:
    return Manifest("f", "s", 1, "2026-12-03T00:00:00+00:00", "manual", "by hand", project, "app", "i", "v", "d")


@pytest.mark.parametrize(
    ("backups", "expected"),
    [
        pytest.param([(Path("b2"), manifest("shop")), (Path("b1"), manifest("shop"))], "b2", id="the newest"),
        pytest.param(
            [(Path("b3"), None), (Path("b2"), manifest("other")), (Path("b1"), manifest("shop"))],
            "b1",
            id="skips one without a manifest and another project's",
        ),
    ],
)
def test_the_drill_takes_the_newest_backup_of_this_project(backups, expected):
    assert drill.newest(backups, "shop")[0] == Path(expected)


def test_the_drill_without_a_backup_says_what_to_do():
    with pytest.raises(UserError, match=r"no backup of shop to drill with; take one with invoke db\.backup"):
        drill.newest([(Path("b1"), manifest("other"))], "shop")


@pytest.mark.parametrize(
    ("passed", "expected"),
    [
        pytest.param(True, "drill PASSED: b.sql.gz restored in 3.2 s; 2 tables, 5 rows; migrate ok", id="pass"),
        pytest.param(False, "drill FAILED: b.sql.gz restored in 3.2 s; 2 tables, 5 rows; migrate ok", id="fail"),
    ],
)
def test_the_drill_verdict_is_one_line(passed, expected):
    assert drill.verdict(passed, "b.sql.gz", 3.21, ["2 tables, 5 rows", "migrate ok"]) == expected


@pytest.mark.parametrize(
    ("kept", "copies", "doomed"),
    [
        pytest.param([("U1", "binlog.000004")], {"U1": ["binlog.000002", "binlog.000003", "binlog.000004",
                     "binlog.000005"]}, [("U1", "binlog.000002"), ("U1", "binlog.000003")],
                     id="older than the oldest kept backup's file"),
        pytest.param([("U1", "binlog.000006"), ("U1", "binlog.000004")], {"U1": ["binlog.000004", "binlog.000005"]},
                     [], id="the oldest kept backup counts, whatever the order"),
        pytest.param([("U1", "binlog.000004")], {"U1": ["binlog.000004"], "U0": ["binlog.000009"]},
                     [("U0", "binlog.000009")], id="a server no kept backup comes from"),
        pytest.param([("U1", "binlog.000004"), ("U0", "binlog.000010")], {"U0": ["binlog.000009", "binlog.000010"]},
                     [("U0", "binlog.000009")], id="each server from its own oldest backup"),
        pytest.param([("U1", "binlog.000004")], {"U1": ["other.000001", "binlog.000001", "notes", "binlog.x"]},
                     [("U1", "binlog.000001"), ("U1", "other.000001")],
                     id="by stem; a name without a number is kept"),
        pytest.param([("", ""), ("U1", "")], {"U1": ["binlog.000001"]}, [("U1", "binlog.000001")],
                     id="a backup without a position needs none"),
    ],
)  # fmt: skip
def test_binlog_copies_go_when_no_kept_backup_needs_them(kept, copies, doomed):
    assert retention.binlogs_to_prune(kept, copies) == doomed
