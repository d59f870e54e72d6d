"""lifecycle.binlog: the binary log's argv, where a dump starts in it, and every point-in-time decision as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from lifecycle import binlog
from lifecycle.backup_file import Manifest
from lifecycle.binlog import Base, BinlogCopy, DumpPosition, ReplayCounter
from lifecycle.commands import binlog as binlog_argv
from lifecycle.commands import dbclient
from lifecycle.commands.dbclient import DbTools
from lifecycle.errors import UserError
from lifecycle.settings import load_settings

ROOT = Path("/checkout")
SETTINGS = load_settings(root=ROOT, environ={"COMPOSE_PROJECT_NAME": "shop", "DB_IMAGE": "mysql:8.4"})
HEAD = ["docker", "compose", "--project-name", "shop", "--file", "/checkout/docker/compose.yaml", "--profile", "*"]
EXEC = [*HEAD, "exec", "--no-TTY"]
MARIADB = DbTools("app", "mariadb-dump", "mariadb")
MYSQL = DbTools("app", "mysqldump", "mysql")
REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------------- argv
@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        pytest.param(MARIADB, ["--master-data=2", "--gtid"], id="mariadb-dump: position and GTID as comments"),
        pytest.param(MYSQL, ["--source-data=2", "--set-gtid-purged=COMMENTED"], id="mysqldump: the same, its names"),
    ],
)
def test_dump_options_record_the_position_as_comments_only(tools, expected):
    assert binlog_argv.dump_options(tools) == expected
    assert dbclient.dump(SETTINGS, tools, expected)[-1 - len(expected) : -1] == expected


def test_dump_without_options_is_unchanged():
    assert dbclient.dump(SETTINGS, MARIADB) == dbclient.dump(SETTINGS, MARIADB, [])
    assert not {"--master-data=2", "--gtid"} & set(dbclient.dump(SETTINGS, MARIADB))


@pytest.mark.parametrize(
    ("tools", "files", "position", "expected_tail"),
    [
        pytest.param(
            MARIADB, ["/tmp/r/binlog.000003"], 864,
            ["mariadb-binlog", "--database=app", "--rewrite-db=app->app__restore",
             "--stop-datetime=2026-12-03 14:05:00", "--disable-log-bin", "--verify-binlog-checksum",
             "--start-position=864", "/tmp/r/binlog.000003"],
            id="mariadb: one file from the backup's position",
        ),
        pytest.param(
            MYSQL, ["/tmp/r/binlog.000003", "/tmp/r/binlog.000004"], 0,
            ["mysqlbinlog", "--database=app", "--rewrite-db=app->app__restore",
             "--stop-datetime=2026-12-03 14:05:00", "--disable-log-bin", "--verify-binlog-checksum", "--skip-gtids",
             "/tmp/r/binlog.000003", "/tmp/r/binlog.000004"],
            id="mysql: two files from the start, GTIDs skipped (already executed ones would be ignored)",
        ),
    ],
)  # fmt: skip
def test_decode_runs_the_servers_own_decoder_in_utc(tools, files, position, expected_tail):
    stop = datetime(2026, 12, 3, 15, 5, tzinfo=timezone(timedelta(hours=1)))  # 14:05 UTC
    argv = binlog_argv.decode(SETTINGS, tools, files, database="app", into="app__restore", stop=stop,
                         start_position=position)  # fmt: skip
    assert argv[: len(EXEC) + 3] == [*EXEC, "--env", "TZ=UTC", "db"]
    assert argv[-len(expected_tail) :] == expected_tail


def test_the_other_commands():
    assert binlog_argv.identity(SETTINGS) == [
        *EXEC,
        "db",
        "sh",
        "-c",
        binlog_argv.IDENTITY,
        "sh",
        binlog_argv.IDENTITY_FILE,
    ]
    assert binlog_argv.read_file(SETTINGS, "/var/lib/mysql/binlog.000001")[-2:] == [
        "sh",
        "/var/lib/mysql/binlog.000001",
    ]
    assert binlog_argv.put_file(SETTINGS, "/tmp/r/binlog.000001")[-1] == "/tmp/r/binlog.000001"
    assert binlog_argv.replay(SETTINGS, MARIADB)[-3:] == ["sh", "mariadb", "--default-character-set=utf8mb4"]


@pytest.mark.parametrize("path", ["docker/compose.yaml", "docker/stack.db.yaml"])
def test_compose_and_the_stack_run_the_server_with_its_binlog(path):
    command = yaml.safe_load((REPO / path).read_text())["services"]["db"]["command"]
    assert command == binlog_argv.server_options("${DB_SERVER_ID:-1}", "${DB_BINLOG_SECONDS:-604800}")


# ------------------------------------------------------------------------------------ the dump's position
MARIADB_DUMP = (
    b"-- MariaDB dump 10.19\n--\n-- Position to start replication or point-in-time recovery from\n--\n\n"
    b"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000003', MASTER_LOG_POS=864;\n\nCREATE TABLE `t` (\n"
    b"INSERT INTO `t` VALUES (1,'-- CHANGE MASTER TO MASTER_LOG_FILE=''x'', MASTER_LOG_POS=1;');\n"
    b"-- SET GLOBAL gtid_slave_pos='0-1-6';\n-- Dump completed on 2026-12-03 14:00:00\n"
)
MYSQL_DUMP = (
    b"-- MySQL dump 10.13\n/* SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'd1f-uuid:1-5';*/\n"
    b"-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n"
)


@pytest.mark.parametrize("size", [1, 7, 64, 10_000], ids=lambda size: f"chunks of {size}")
@pytest.mark.parametrize(
    ("dump", "expected"),
    [
        pytest.param(MARIADB_DUMP, ("binlog.000003", 864, "0-1-6"), id="mariadb-dump"),
        pytest.param(MYSQL_DUMP, ("binlog.000002", 157, "d1f-uuid:1-5"), id="mysqldump"),
        pytest.param(b"-- no binlog\nCREATE TABLE `t` (\n", ("", 0, ""), id="a server without a binlog"),
    ],
)
def test_the_dump_position_is_found_however_the_stream_is_cut(dump, expected, size):
    position = DumpPosition()
    for start in range(0, len(dump), size):
        position.feed(dump[start : start + size])
    assert (position.file, position.position, position.gtid) == expected


def test_a_manifest_carries_the_position_and_old_manifests_still_read():
    manifest = Manifest(
        "a.sql.gz", "0" * 64, 1, NOW.isoformat(), "manual", "by hand", "shop", "app", "img", "11", "mariadb-dump",
        binlog_file="binlog.000003", binlog_position=864, binlog_origin="uuid",
    )  # fmt: skip
    assert Manifest.from_json(manifest.to_json()) == manifest
    old = manifest.to_json().replace('"binlog_position": 864,', "").replace('"binlog_file": "binlog.000003",', "")
    assert Manifest.from_json(old).binlog_position == 0
    with pytest.raises(ValueError, match="binlog_position"):
        Manifest.from_json(manifest.to_json().replace('"binlog_position": 864', '"binlog_position": "864"'))


# ------------------------------------------------------------------------------------------------- --to
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-12-03T14:05:00Z", at("2026-12-03T14:05:00"), id="UTC"),
        pytest.param("2026-12-03T15:05:00+01:00", at("2026-12-03T14:05:00"), id="an offset: converted to UTC"),
        pytest.param("2026-12-03T09:05:00.500-05:00", at("2026-12-03T14:05:00.500"), id="fractions and west"),
        pytest.param("2026-12-03 14:05:00+00:00", at("2026-12-03T14:05:00"), id="a space for T"),
        pytest.param("2026-12-03T15:00:00Z", NOW, id="now itself"),
    ],
)
def test_parse_instant_takes_a_time_with_its_zone(text, expected):
    assert binlog.parse_instant(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("2026-12-03T14:05:00", "has no time zone", id="no zone"),
        pytest.param("2026-12-03", "has no time zone", id="a date"),
        pytest.param("yesterday", "is not a time", id="words"),
        pytest.param("", "is not a time", id="empty"),
        pytest.param("2026-12-03T15:00:01Z", "is after now", id="a second after now"),
        pytest.param("2026-12-03T16:30:00+01:00", "is after now", id="after now, in another zone"),
    ],
)
def test_parse_instant_refuses_in_one_line(text, words):
    with pytest.raises(UserError) as error:
        binlog.parse_instant(text, NOW)
    assert words in str(error.value) and "nothing was changed" in str(error.value)
    assert "\n" not in str(error.value)


BASES = [
    Base("shop-1.sql.gz", at("2026-12-03T10:00:00"), "binlog.000002", 400, "U1"),
    Base("shop-2.sql.gz", at("2026-12-03T12:00:00"), "binlog.000004", 900, "U1"),
    Base("shop-3.sql.gz", at("2026-12-03T13:00:00"), "", 0, ""),  # taken before the server kept a binlog
]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param("2026-12-03T11:00:00", "shop-1.sql.gz", id="between two: the earlier"),
        pytest.param("2026-12-03T14:00:00", "shop-2.sql.gz", id="after all: the newest with a position"),
        pytest.param("2026-12-03T12:00:00.000001", "shop-2.sql.gz", id="a microsecond after one"),
        pytest.param("2026-12-03T12:00:00", "shop-1.sql.gz", id="exactly at one: the one before (before T)"),
    ],
)
def test_choose_base_takes_the_last_full_backup_before_the_time(target, expected):
    assert binlog.choose_base(BASES, at(target)).name == expected


@pytest.mark.parametrize(
    ("bases", "words"),
    [
        pytest.param(BASES, "the oldest backup with a binlog position is from 2026-12-03T10:00:00Z", id="too early"),
        pytest.param(BASES[2:], "no backup records a binlog position", id="no usable backup"),
        pytest.param([], "no backup records a binlog position", id="no backup"),
    ],
)
def test_choose_base_refuses_a_time_before_every_usable_backup(bases, words):
    with pytest.raises(UserError) as error:
        binlog.choose_base(bases, at("2026-12-03T09:00:00"))
    assert "is before every usable backup" in str(error.value) and words in str(error.value)


def copies(*specs: tuple[str, str, str]) -> dict[str, BinlogCopy]:
    """(name, origin, HH:MM on 2026-12-03 when it was known closed) each."""
    return {
        name: BinlogCopy(name, "s", 1, origin, at(f"2026-12-03T{closed}").isoformat()) for name, origin, closed in specs
    }


BASE = BASES[1]  # binlog.000004 at 900, server U1


@pytest.mark.parametrize(
    ("found", "target", "expected"),
    [
        pytest.param(copies(("binlog.000004", "U1", "13:00")), "2026-12-03T12:30:00",
                     ["binlog.000004"], id="one file reaches past the time"),
        pytest.param(copies(("binlog.000003", "U1", "11:00"), ("binlog.000004", "U1", "12:10"),
                            ("binlog.000005", "U1", "13:00"), ("binlog.000006", "U1", "14:00"),
                            ("binlog.000007", "U1", "15:00")),
                     "2026-12-03T12:30:00", ["binlog.000004", "binlog.000005", "binlog.000006"],
                     id="from the base's file, and one more after the covering one"),
        pytest.param(copies(("binlog.000004", "U1", "13:00"), ("other.000005", "U2", "14:00")),
                     "2026-12-03T12:30:00", ["binlog.000004"], id="another stem is not part of the chain"),
    ],
)  # fmt: skip
def test_chain_lists_the_binlogs_to_replay(found, target, expected):
    assert binlog.chain(BASE, found, at(target)) == expected


@pytest.mark.parametrize(
    ("found", "words"),
    [
        pytest.param(copies(("binlog.000005", "U1", "14:00")),
                     "binlog binlog.000004, where backup shop-2.sql.gz starts, was not copied", id="the first missing"),
        pytest.param(copies(("binlog.000004", "U1", "12:10"), ("binlog.000006", "U1", "14:00")),
                     "the binlogs have a gap: binlog.000004 is followed by binlog.000006", id="a gap"),
        pytest.param(copies(("binlog.000004", "U1", "12:10"), ("binlog.000005", "U2", "14:00")),
                     "binlog binlog.000005 comes from another server (U2, the backup's is U1)", id="another server"),
        pytest.param(copies(("binlog.000004", "U1", "12:10"), ("binlog.000005", "U1", "12:20")),
                     "the copied binlogs reach only to 2026-12-03T12:20:00+00:00, before --to 2026-12-03T12:30:00Z",
                     id="copies end before the time"),
    ],
)  # fmt: skip
def test_chain_refuses_in_one_line(found, words):
    with pytest.raises(UserError) as error:
        binlog.chain(BASE, found, at("2026-12-03T12:30:00"))
    assert words in str(error.value) and "nothing was changed" in str(error.value)


@pytest.mark.parametrize(
    ("rows", "copied", "expected"),
    [
        pytest.param([["binlog.000001", "500", "No"], ["binlog.000002", "300", "No"]], {}, ["binlog.000001"],
                     id="the last one is still written"),
        pytest.param([["binlog.000001", "500"], ["binlog.000002", "300"], ["binlog.000003", "9"]],
                     {"binlog.000001": BinlogCopy("binlog.000001", "s", 500, "U", NOW.isoformat())}, ["binlog.000002"],
                     id="copied once"),
        pytest.param([["binlog.000001", "500"], ["binlog.000002", "9"]],
                     {"binlog.000001": BinlogCopy("binlog.000001", "s", 499, "U", NOW.isoformat())}, ["binlog.000001"],
                     id="a copy of another size is taken again"),
        pytest.param([], {}, [], id="no binlog"),
    ],
)  # fmt: skip
def test_to_copy_takes_the_closed_binlogs_not_yet_copied(rows, copied, expected):
    closed = binlog.closed_logs(rows)
    assert binlog.to_copy(closed, copied) == expected


def test_a_sidecar_round_trips_and_a_foreign_file_is_refused():
    copy = BinlogCopy("binlog.000001", "ab", 5, "U", NOW.isoformat())
    assert BinlogCopy.from_json(copy.to_json()) == copy
    for text in ("[]", '{"file": "x"}', copy.to_json().replace('"size": 5', '"size": "5"')):
        with pytest.raises(ValueError):
            BinlogCopy.from_json(text)


# ---------------------------------------------------------------------------------------- what was replayed
DECODED = (
    b"# at 325\n#261203 14:04:58 server id 1  end_log_pos 367 CRC32 0x899bfa9f \tGTID 0-1-1 ddl thread_id=6\n"
    b"use `app__restore`/*!*/;\n"
    b"#261203  9:04:59 server id 1  end_log_pos 552 CRC32 0x9a2ba474 \tGTID 0-1-2 trans thread_id=6\n"
    b"#Q> insert into t values ('#261203 14:04:59 server id 1  end_log_pos 1 CRC32 0x0 \tGTID 0-1-9')\n"
    b"#261203 14:04:59 server id 1  end_log_pos 985 CRC32 0x9326bac5 \tXid = 6\n"
    b"#261203 14:04:59 server id 1  end_log_pos 1024 CRC32 0x1 \tGTID\tlast_committed=1\tsequence_number=2\n"
)


@pytest.mark.parametrize("size", [1, 13, 100_000], ids=lambda size: f"chunks of {size}")
def test_the_replay_counter_counts_transactions_and_the_last_time(size):
    counter = ReplayCounter()
    for start in range(0, len(DECODED), size):
        counter.feed(DECODED[start : start + size])
    counter.finish()
    assert counter.transactions == 3  # two MariaDB GTID events, one MySQL one; never a quoted statement
    assert counter.last == at("2026-12-03T14:04:59")
