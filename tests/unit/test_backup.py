"""lifecycle.commands.dbclient and lifecycle.backup: exact argv, the dump-tool choice, every decision on plain data."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle import backup, backup_file, dbserver, dump_guard, restore
from lifecycle.backup import Database
from lifecycle.backup_file import AUTOMATIC, MANUAL, Manifest
from lifecycle.commands import dbclient
from lifecycle.commands import sql as sql_text
from lifecycle.commands.dbclient import DbTools
from lifecycle.context import Context
from lifecycle.dump_scan import RowCounter
from lifecycle.errors import UserError
from lifecycle.runner import Result
from lifecycle.settings import load_settings

ROOT = Path("/checkout")
SETTINGS = load_settings(root=ROOT, environ={"COMPOSE_PROJECT_NAME": "shop", "DB_IMAGE": "mysql:8.4"})
HEAD = ["docker", "compose", "--project-name", "shop", "--file", "/checkout/docker/compose.yaml", "--profile", "*"]
MARIADB = DbTools("app", "mariadb-dump", "mariadb")
MYSQL = DbTools("app", "mysqldump", "mysql")


# ------------------------------------------------------------------------------------------- tool choice
@pytest.mark.parametrize(
    ("probe_output", "expected"),
    [
        pytest.param("app\n/usr/bin/mysqldump\n/usr/bin/mysql\n", MYSQL, id="official mysql image: mysqldump, mysql"),
        pytest.param(
            "app\n/usr/bin/mariadb-dump\n/usr/bin/mysqldump\n/usr/bin/mariadb\n/usr/bin/mysql\n",
            MARIADB,
            id="MariaDB with the mysql aliases: the mariadb names win",
        ),
        pytest.param("app\n/usr/bin/mariadb-dump\n/usr/bin/mariadb\n", MARIADB, id="MariaDB without aliases"),
        pytest.param(
            "shop\n/usr/local/bin/mysqldump\n/usr/bin/mariadb\n",
            DbTools("shop", "mysqldump", "mariadb"),
            id="mixed: each chosen on its own",
        ),
    ],
)
def test_choose_tools_picks_the_programs_the_container_has(probe_output, expected):
    assert dbclient.choose_tools(probe_output) == expected


@pytest.mark.parametrize(
    ("probe_output", "words"),
    [
        pytest.param("app\n/usr/bin/mysql\n", "no mariadb-dump or mysqldump", id="no dump program"),
        pytest.param("app\n/usr/bin/mysqldump\n", "no mariadb-dump or mysqldump", id="no client"),
        pytest.param("\n/usr/bin/mysqldump\n/usr/bin/mysql\n", "no MYSQL_DATABASE", id="no database name"),
        pytest.param("", "no MYSQL_DATABASE", id="no output"),
    ],
)
def test_choose_tools_refuses_a_container_without_them_in_one_line(probe_output, words):
    with pytest.raises(UserError) as error:
        dbclient.choose_tools(probe_output)
    assert words in str(error.value) and "\n" not in str(error.value)


ROOT_SH = ["sh", "-c", dbclient.AS_ROOT, "sh"]
DUMP_SH = ["sh", "-c", dbclient.DUMP_AS_ROOT, "sh"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            dbclient.dump(SETTINGS, MYSQL),
            [*HEAD, "exec", "--no-TTY", "db", *DUMP_SH, "mysqldump", "--single-transaction", "--routines",
             "--triggers", "--events", "--default-character-set=utf8mb4", "--max-allowed-packet=1G", "app"],
            id="dump with mysqldump: one snapshot, routines, triggers, events, utf8mb4",
        ),
        pytest.param(
            dbclient.dump(SETTINGS, MARIADB)[:16], [*HEAD, "exec", "--no-TTY", "db", *DUMP_SH, "mariadb-dump"],
            id="dump with mariadb-dump",
        ),
        pytest.param(
            dbclient.load(SETTINGS, MARIADB, "app__restore"),
            [*HEAD, "exec", "--no-TTY", "--env", "LIFECYCLE_LOAD_PASSWORD", "db", "sh", "-c", dbclient.AS_USER, "sh",
             "mariadb", "lifecycle_restore", "--default-character-set=utf8mb4", "--max-allowed-packet=1G",
             "--binary-mode", "app__restore"],
            id="load into the scratch database as the restore's own account, its password by name only",
        ),
        pytest.param(
            dbclient.script(SETTINGS, MARIADB),
            [*HEAD, "exec", "--no-TTY", "db", *ROOT_SH, "mariadb", "--batch", "--default-character-set=utf8mb4"],
            id="SQL on stdin as root (statements holding a password)",
        ),
        pytest.param(
            dbclient.sql(SETTINGS, MYSQL, "SELECT 1", "app"),
            [*HEAD, "exec", "--no-TTY", "db", *ROOT_SH, "mysql", "--batch", "--skip-column-names",
             "--default-character-set=utf8mb4", "--execute=SELECT 1", "app"],
            id="one SQL batch as root",
        ),
        pytest.param(
            dbclient.shell(SETTINGS, MARIADB, root=False, tty=True),
            [*HEAD, "exec", "db", "sh", "-c", dbclient.AS_APP, "sh", "mariadb", "--default-character-set=utf8mb4"],
            id="shell as the app user with a terminal",
        ),
        pytest.param(
            dbclient.shell(SETTINGS, MARIADB, root=True, tty=False),
            [*HEAD, "exec", "--no-TTY", "db", *ROOT_SH, "mariadb", "--default-character-set=utf8mb4"],
            id="shell as root without a terminal",
        ),
        pytest.param(
            dbclient.write_marker(SETTINGS, "mysql:8.4 8.4.3"),
            [*HEAD, "exec", "--no-TTY", "--env", "LIFECYCLE_DB_SERVER=mysql:8.4 8.4.3", "db", "sh", "-c",
             'printf "%s\\n" "$LIFECYCLE_DB_SERVER" > "$1"', "sh", dbclient.MARKER],
            id="the server record travels in the environment",
        ),
        pytest.param(
            dbclient.read_marker_offline("shop_db-data", "mysql:9.1"),
            ["docker", "run", "--rm", "--network", "none", "--volume", "shop_db-data:/var/lib/mysql:ro",
             "--entrypoint", "sh", "mysql:9.1", "-c", 'cat "$1" 2>/dev/null || true', "sh", dbclient.MARKER],
            id="read the record of a volume with no server running",
        ),
    ],
)  # fmt: skip
def test_builders_give_exact_argv(argv, expected):
    assert argv == expected


def test_no_password_is_ever_on_a_command_line():
    for argv in (dbclient.dump(SETTINGS, MYSQL), dbclient.shell(SETTINGS, MYSQL, root=True, tty=False)):
        assert not any("password" in arg.lower() and "$MYSQL" not in arg for arg in argv)
        assert not any(arg.startswith(("-p", "--password")) for arg in argv)


# ------------------------------------------------------------------------------------------ row counting
MYSQLDUMP_STYLE = (
    b"CREATE TABLE `a` (\n  `id` int\n);\n"
    b"INSERT INTO `a` VALUES (1,'x),(y'),(2,NULL),(3,'it''s \\' (')\n;\n"
    b"CREATE TABLE `empty` (\n  `id` int\n);\n"
    b"INSERT INTO `we``ird` VALUES (1,_binary '\\0\\n(\\Z'),(2,0x2829);\n"
    b"-- Dump completed on 2026-01-01\n"
)
MARIADB11_STYLE = (
    b"CREATE TABLE `a` (\n  `id` int\n);\n"
    b"INSERT INTO `a` VALUES\n(1,'x),\\n(y'),\n(2,NULL),\n(3,'\xf0\x9f\x98\x80 ( ');\n"
    b"INSERT INTO `a` VALUES\n(4,'');\n"
    b"-- Dump completed on 2026-01-01\n"
)


@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20], ids=["byte by byte", "odd chunks", "one chunk"])
@pytest.mark.parametrize(
    ("dump", "expected"),
    [
        pytest.param(MYSQLDUMP_STYLE, {"a": 3, "empty": 0, "we`ird": 2}, id="rows on one line (mysqldump)"),
        pytest.param(MARIADB11_STYLE, {"a": 4}, id="one row per line (mariadb-dump 11)"),
    ],
)
def test_row_counter_counts_rows_whatever_the_strings_hold(dump, expected, chunk_size):
    counter = RowCounter()
    for start in range(0, len(dump), chunk_size):
        counter.feed(dump[start : start + chunk_size])
    assert counter.finish() == expected
    assert counter.completed


def test_row_counter_sees_an_unfinished_dump():
    counter = RowCounter()
    counter.feed(MYSQLDUMP_STYLE[:60])
    counter.finish()
    assert not counter.completed


# --------------------------------------------------------------------------------------------- verifying
def write_backup(folder: Path, dump: bytes = MYSQLDUMP_STYLE, name: str = "shop-20260101T000000000Z.sql.gz",
                 **fields) -> Path:  # fmt: skip
    path = folder / name
    path.write_bytes(gzip.compress(dump, mtime=0))
    data = path.read_bytes()
    manifest = manifest_for(path.name, sha256=hashlib.sha256(data).hexdigest(), size=len(data), **fields)
    backup_file.manifest_path(path).write_text(manifest.to_json())
    return path


def manifest_for(name: str, **fields) -> Manifest:
    values = dict(file=name, sha256="0" * 64, size=1, created="2026-01-01T00:00:00+00:00", kind=MANUAL,
                  reason="by hand", project="shop", database="app", server_image="mysql:8.4",
                  server_version="8.4.3", dump_tool="mysqldump", tables={"a": 3})  # fmt: skip
    return Manifest(**{**values, **fields})


def test_a_sound_backup_verifies_and_returns_its_manifest(tmp_path):
    manifest = backup_file.verify(write_backup(tmp_path))
    assert manifest.database == "app" and manifest.rows == 3


def damage(kind: str, path: Path) -> None:
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupted":
        path.write_bytes(data[:20] + bytes([data[20] ^ 0xFF]) + data[21:])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not gzip":
        path.write_bytes(b"-- a plain SQL file\n" + data)
    elif kind == "no manifest":
        backup_file.manifest_path(path).unlink()
    elif kind == "missing":
        path.unlink()


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("truncated", "truncated"),
        ("corrupted", "nothing was restored"),
        ("empty", "is empty"),
        ("not gzip", "not a gzip file"),
        ("no manifest", "no readable manifest"),
        ("missing", "does not exist"),
    ],
)
def test_a_damaged_backup_is_refused_in_one_line(tmp_path, kind, words):
    path = write_backup(tmp_path)
    damage(kind, path)
    with pytest.raises(UserError) as error:
        backup_file.verify(path)
    assert words in str(error.value) and "\n" not in str(error.value)


def rewrite_with_matching_manifest(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    manifest = Manifest.from_json(backup_file.manifest_path(path).read_text())
    fields = {**manifest.__dict__, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    backup_file.manifest_path(path).write_text(Manifest(**fields).to_json())


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(lambda data: data[:-12], "not a complete gzip stream", id="gzip cut short, manifest rewritten"),
        pytest.param(lambda data: data + b"garbage", "not a complete gzip stream", id="bytes after the stream"),
        pytest.param(lambda data: gzip.compress(MYSQLDUMP_STYLE[:-40]), "unfinished dump", id="dump cut short"),
    ],
)
def test_a_stream_damaged_behind_a_matching_manifest_is_refused(tmp_path, make, words):
    path = write_backup(tmp_path)
    rewrite_with_matching_manifest(path, make(path.read_bytes()))
    with pytest.raises(UserError) as error:
        backup_file.verify(path)
    assert words in str(error.value)


def test_decompressed_never_yields_more_than_a_chunk_however_well_it_compressed(tmp_path):
    path = tmp_path / "zeros.gz"
    path.write_bytes(gzip.compress(b"\0" * (20 << 20)))
    sizes = [len(chunk) for chunk in backup_file.decompressed(path)]
    assert sum(sizes) == 20 << 20 and max(sizes) <= backup_file.CHUNK


# ------------------------------------------------------------------------------------- plain decisions
def test_backup_names_sort_by_time_and_differ_within_a_second():
    first = backup_file.backup_name("shop", datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
    second = backup_file.backup_name("shop", datetime(2026, 1, 2, 3, 4, 5, 7000, tzinfo=UTC))
    assert first == "shop-20260102T030405006Z.sql.gz" and first < second


def test_prune_removes_only_automatic_backups_of_this_project_beyond_keep(tmp_path):
    entries = [(tmp_path / f"shop-2026010{i}.sql.gz", manifest_for("x", kind=AUTOMATIC)) for i in range(1, 5)]
    entries += [(tmp_path / "shop-20260100.sql.gz", manifest_for("x", kind=MANUAL))]
    entries += [(tmp_path / "other-20260101.sql.gz", manifest_for("x", kind=AUTOMATIC, project="other"))]
    entries += [(tmp_path / "shop-20250101.sql.gz", None)]
    oldest = [tmp_path / "shop-20260102.sql.gz", tmp_path / "shop-20260101.sql.gz"]
    assert backup_file.to_prune(entries, "shop", 2) == oldest
    assert backup_file.to_prune(entries, "shop", 10) == []
    assert len(backup_file.to_prune(entries, "shop", 0)) == 4


@pytest.mark.parametrize(
    ("recorded", "new_image", "expected"),
    [
        pytest.param("", "mysql:9.1", None, id="no record: a fresh volume"),
        pytest.param("mysql:8.4 8.4.3", "mysql:8.4", None, id="same image"),
        pytest.param("mysql:8.4 8.4.3", "mysql:8.4.5", None, id="same major"),
        pytest.param("mysql:8.4 8.4.3", "mysql:9.1", "mysql:8.4", id="major up"),
        pytest.param(
            "lifecycle/mariadb:11.8 11.8.9-MariaDB-0+deb13u1 from Debian",
            "mysql:8.4",
            "11.8.9",
            id="product and major change",
        ),
        pytest.param("mysql:8.4 8.4.3", "mysql:latest", "mysql:latest", id="unknown major: back up"),
        pytest.param("registry:5000/db/mysql:8.4 8.4.3", "registry:5000/db/mysql:8.0", None, id="registry port"),
    ],
)
def test_server_change_decides_when_up_backs_up_first(recorded, new_image, expected):
    reason = dbserver.server_change(recorded, new_image)
    if expected is None:
        assert reason is None
    else:
        assert reason and expected in reason and reason.startswith("DB_IMAGE changed from")


def test_planned_migrations_reads_migrate_plan():
    plan = "Planned operations:\nnotes.0002_note_tags\n    Add field tags to note\nauth.0013_x\n    Raw SQL\n"
    assert restore.planned_migrations(plan) == ["notes.0002_note_tags", "auth.0013_x"]
    assert restore.planned_migrations("Planned operations:\n  No planned migration operations.\n") == []


def test_swap_moves_every_table_in_one_rename_statement():
    sql = sql_text.swap_sql("app", "app__restore", "app__replaced", ["a", "old"], ["a", "b`c"])
    renames = [part for part in sql.split("; ") if part.startswith("RENAME TABLE")]
    assert renames == [
        "RENAME TABLE `app`.`a` TO `app__replaced`.`a`, `app`.`old` TO `app__replaced`.`old`, "
        "`app__restore`.`a` TO `app`.`a`, `app__restore`.`b``c` TO `app`.`b``c`"
    ]
    assert sql.endswith("DROP DATABASE `app__replaced`; DROP DATABASE `app__restore`")


def test_count_rows_and_mismatches():
    assert sql_text.count_rows_sql("app", ["a", "it's"]) == (
        "SELECT 'a', COUNT(*) FROM `app`.`a` UNION ALL SELECT 'it''s', COUNT(*) FROM `app`.`it's`"
    )
    assert restore.count_mismatches({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []
    assert restore.count_mismatches({"a": 1, "b": 2}, {"a": 0, "c": 5}) == [
        "a: 0 rows, manifest 1", "b: missing rows, manifest 2", "c: 5 rows, manifest none"
    ]  # fmt: skip


def test_running_containers_reads_docker_ps():
    ps = "db\tmysql:8.4\t\t\nprod\tshop:prod\tabc123\tdeadbeef\n"
    assert backup.running_containers(ps) == backup.Running("mysql:8.4", "prod", "abc123", "deadbeef")
    assert backup.running_containers("db\tmysql:8.4\t\t\n") == backup.Running("mysql:8.4")


def test_listing_shows_size_age_kind_and_summary(tmp_path):
    path = write_backup(tmp_path, kind=AUTOMATIC, reason="before db.reset", migrations={"notes": "0001_initial"})
    os.utime(path, (0, 1000))
    path.chmod(0o600), backup_file.manifest_path(path).chmod(0o600)
    (line,) = backup_file.listing(backup_file.read_manifests(tmp_path), now=1000 + 2 * 3600)
    assert line.startswith(f"{path.name}  ")
    for words in ("2 h old", "automatic (before db.reset)", "app: 1 tables, 3 rows", "notes.0001_initial"):
        assert words in line


# ------------------------------------------------------------------------ a backup through fake edges
class FakeStreams:
    def __init__(self, dump: bytes, status: int = 0):
        self.dump, self.status = dump, status

    def stream_out(self, argv, sink, *, env):
        for start in range(0, len(self.dump), 1000):
            sink(self.dump[start : start + 1000])
        return self.status

    def stream_in(self, argv, chunks, *, env):
        raise AssertionError("not used")


class SqlRunner:
    """Answers the probe, ps and SELECT calls a backup makes."""

    def __call__(self, argv, *, env=None, warn=False, capture=False, interactive=False):
        text = " ".join(argv)
        if "command -v" in text:
            return Result(0, "app\n/usr/bin/mysqldump\n/usr/bin/mysql\n")
        if "label=com.docker.compose.service=db" in text:
            return Result(0, "abc123 mysql:8.4 running\n")
        if "VERSION()" in text:
            return Result(0, "8.4.3\n")
        if "django_migrations" in text:
            return Result(0, "notes\t0001_initial\n")
        if argv[:2] == ["docker", "ps"]:
            return Result(0, "db\tmysql:8.4\t\t\n")
        return Result(0, "")


def database(tmp_path: Path, streams: FakeStreams, **environ: str) -> Database:
    settings = load_settings(root=tmp_path, environ={"COMPOSE_PROJECT_NAME": "shop", **environ})
    return Database(Context(settings, SqlRunner(), say=lambda message: None, streams=streams))


def test_a_backup_writes_the_dump_and_a_manifest_that_describes_it(tmp_path):
    path = database(tmp_path, FakeStreams(MYSQLDUMP_STYLE)).backup()
    assert gzip.decompress(path.read_bytes()) == MYSQLDUMP_STYLE
    manifest = backup_file.verify(path)
    assert manifest.tables == {"a": 3, "empty": 0, "we`ird": 2}
    assert (manifest.kind, manifest.server_version, manifest.dump_tool) == (MANUAL, "8.4.3", "mysqldump")
    assert manifest.migrations == {"notes": "0001_initial"} and manifest.server_image == "mysql:8.4"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name.replace(".sql.gz", ".json"), path.name]


@pytest.mark.parametrize(
    "streams",
    [FakeStreams(MYSQLDUMP_STYLE, status=2), FakeStreams(MYSQLDUMP_STYLE[:80])],
    ids=["the dump program fails", "the dump stops early"],
)
def test_a_failed_dump_leaves_no_file_behind(tmp_path, streams):
    with pytest.raises(UserError) as error:
        database(tmp_path, streams).backup()
    assert "no backup was written" in str(error.value)
    assert list((tmp_path / "backups").iterdir()) == []


def test_automatic_backups_are_pruned_to_backup_keep_and_manual_ones_stay(tmp_path):
    db = database(tmp_path, FakeStreams(MYSQLDUMP_STYLE), BACKUP_KEEP="2")
    manual = db.backup()
    automatic = [db.safety_backup("before a test", skip=False) for _ in range(4)]
    left = sorted((tmp_path / "backups").glob("*.sql.gz"))
    assert left == sorted([manual, *automatic[-2:]])
    assert not any(backup_file.manifest_path(path).exists() for path in automatic[:2])


def test_no_backup_skips_and_says_so(tmp_path):
    said = []
    db = database(tmp_path, FakeStreams(MYSQLDUMP_STYLE))
    db.ctx = replace(db.ctx, say=said.append)
    assert db.safety_backup("before db.reset", skip=True) is None
    assert said == ["safety backup skipped (--no-backup) before db.reset"]
    assert not (tmp_path / "backups").exists()


# ------------------------------------------------------------------------------------------ bench rows
def test_bench_rows_compare_with_the_plain_tools_and_check_peak_memory():
    from bench.sections import backup as section

    measured = {"data_bytes": 200_000_000, "plain_backup_s": [10.0], "plain_restore_s": [20.0], "backup_s": [10.5],
                "restore_s": [40.0], "backup_peak_kb": [50 * 1024], "restore_peak_kb": [150 * 1024]}  # fmt: skip
    rows = {row.key: row for row in section.rows(measured, {})}
    assert rows["db_backup_throughput"].value == "19.0 vs 20.0 MB/s (95%)"
    assert rows["db_backup_throughput"].status == "PASS" and rows["db_restore_throughput"].status == "MISS"
    assert "every statement scanned" in rows["db_restore_throughput"].why
    assert rows["db_backup_peak"].status == "PASS" and rows["db_restore_peak"].status == "MISS"
    assert "REPEAT(SHA2(n, 256), 16)" in section.generate_sql(2) and "n < 2000" in section.generate_sql(2)


@pytest.mark.parametrize("value", ["0", "ten", "-1", "1.5"])
def test_backup_keep_must_be_a_count_of_at_least_one(tmp_path, value):
    with pytest.raises(UserError) as error:
        load_settings(root=tmp_path, environ={"BACKUP_KEEP": value})
    assert str(error.value).startswith(f"BACKUP_KEEP={value!r} is not a count of at least 1")


def test_an_unwritable_backup_folder_is_one_line_and_leaves_nothing(tmp_path):
    (tmp_path / "blocked").write_text("a file where the folder should be")
    with pytest.raises(UserError) as error:
        database(tmp_path, FakeStreams(MYSQLDUMP_STYLE), BACKUP_DIR="blocked/backups").backup()
    assert "no backup was written" in str(error.value) and "\n" not in str(error.value)


def test_a_failed_safety_backup_says_how_to_go_on_without_one(tmp_path):
    with pytest.raises(UserError) as error:
        database(tmp_path, FakeStreams(b"", status=2)).safety_backup("before db.reset", skip=False)
    assert str(error.value).endswith("nothing else was done (add --no-backup to go on without a backup)")


def test_two_backups_in_one_millisecond_get_two_names_in_time_order(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    first, _ = backup_file.new_backup_path(tmp_path, "shop", now)
    first.write_bytes(b"taken")
    second, when = backup_file.new_backup_path(tmp_path, "shop", now)
    assert second != first and sorted([second, first]) == [first, second]
    assert when == now + timedelta(milliseconds=1)


# ------------------------------------------------------------------------- private files (issue 23 High #1)
@pytest.fixture
def umask_022():
    """The common default umask, under which a file made without an explicit mode is readable by everyone."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_a_backup_is_the_owners_alone_under_umask_022(tmp_path, umask_022):
    path = database(tmp_path, FakeStreams(MYSQLDUMP_STYLE)).backup()
    assert (mode(path), mode(backup_file.manifest_path(path)), mode(path.parent)) == (0o600, 0o600, 0o700)


def test_an_existing_backup_folder_of_ours_is_narrowed_and_a_shared_one_is_left_alone(tmp_path, umask_022):
    ours = tmp_path / "backups"
    ours.mkdir(mode=0o755)
    database(tmp_path, FakeStreams(MYSQLDUMP_STYLE)).backup()
    assert mode(ours) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    path = database(tmp_path, FakeStreams(MYSQLDUMP_STYLE), BACKUP_DIR="shared").backup()
    assert mode(shared) == 0o1777 and mode(path) == 0o600


@pytest.mark.parametrize("planted", ["partial", "manifest"])
def test_a_planted_symlink_in_a_shared_backup_folder_never_redirects_the_write(tmp_path, monkeypatch, planted):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = shared / "shop-20260101T000000000Z.sql.gz"
    monkeypatch.setattr(backup, "new_backup_path", lambda folder, project, now, suffix: (path, now))
    link = path.with_name(path.name + ".partial") if planted == "partial" else backup_file.manifest_path(path)
    link.symlink_to(victim)
    with pytest.raises(UserError) as error:
        database(tmp_path, FakeStreams(MYSQLDUMP_STYLE), BACKUP_DIR="shared").backup()
    assert "no backup was written" in str(error.value) and "\n" not in str(error.value)
    assert victim.read_text() == "precious\n"
    assert not path.exists()


def test_db_list_warns_in_one_line_about_backups_other_users_can_read(tmp_path, umask_022):
    db = database(tmp_path, FakeStreams(MYSQLDUMP_STYLE))
    private_one = db.backup()
    assert not any(line.startswith("warning") for line in db.list())
    exposed = write_backup(tmp_path / "backups")  # written with the umask, as the old code did
    assert mode(exposed) == 0o644
    warnings = [line for line in db.list() if line.startswith("warning")]
    assert warnings == [f"warning: 1 backup(s) can be read by other users ({exposed.name}): chmod 600 them and "
                        "their .json manifests"]  # fmt: skip
    assert private_one.name not in warnings[0]


# ---------------------------------------------------------------------- manifests with wrong field types
@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"tables": ["a", 3]}, id="tables a list"),
        pytest.param({"tables": {"a": "3"}}, id="a row count as a string"),
        pytest.param({"tables": {"a": True}}, id="a row count as a boolean"),
        pytest.param({"tables": {"a": -1}}, id="a negative row count"),
        pytest.param({"migrations": {"notes": 1}}, id="a migration name as a number"),
        pytest.param({"migrations": "notes.0001"}, id="migrations a string"),
        pytest.param({"size": "120"}, id="size a string"),
        pytest.param({"kind": None}, id="kind null"),
        pytest.param({"database": ["app"]}, id="database a list"),
        pytest.param({"server_version": 11.8}, id="server version a number"),
        pytest.param("[1, 2]", id="a JSON list"),
        pytest.param("42", id="a JSON number"),
        pytest.param("null", id="JSON null"),
    ],
)
def test_a_manifest_with_wrong_types_is_one_line_in_db_list_and_refused_by_restore(tmp_path, fields):
    folder = tmp_path / "backups"
    folder.mkdir()
    good = write_backup(folder, name="shop-20250101T000000000Z.sql.gz")
    path = write_backup(folder)
    if isinstance(fields, str):
        backup_file.manifest_path(path).write_text(fields)
    else:
        data = json.loads(backup_file.manifest_path(path).read_text())
        backup_file.manifest_path(path).write_text(json.dumps({**data, **fields}))
    lines = database(tmp_path, FakeStreams(b"")).list()
    assert lines[0].startswith(path.name) and lines[0].endswith("(no readable manifest: cannot be restored)")
    assert lines[1].startswith(good.name) and "1 tables, 3 rows" in lines[1]  # the next entry is still listed
    with pytest.raises(UserError) as error:
        backup_file.verify(path)
    assert "no readable manifest" in str(error.value) and "\n" not in str(error.value)


# ----------------------------------------------------------- statements a restore refuses (issue 23 Medium #6)
MARIADB_HEADER = (
    b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.20-11.8.9-MariaDB, for debian-linux-gnu\n--\n"
    b"-- Host: localhost    Database: app\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n"
    b"/*!40103 SET TIME_ZONE='+00:00' */;\n"
    b"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n"
    b"/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;\n"
    b"DROP TABLE IF EXISTS `notes_note`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
    b"CREATE TABLE `notes_note` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `price` decimal(5,2) DEFAULT 1.50,\n"
    b"  `grant` varchar(9) DEFAULT 'x.y',\n  `it's` int CHECK (`it's` >= 0),\n  PRIMARY KEY (`id`),\n"
    b"  CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `auth_user` (`id`)\n"
    b") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_ai_ci COMMENT='GRANT ALL ON *.* TO x; db.t';\n"
    b"SET @OLD_AUTOCOMMIT=@@AUTOCOMMIT, @@AUTOCOMMIT=0;\nLOCK TABLES `notes_note` WRITE;\n"
    b"/*!40000 ALTER TABLE `notes_note` DISABLE KEYS */;\n"
    b"INSERT INTO `notes_note` VALUES\n(1,1.50,'GRANT ALL ON *.* TO x;\\nDROP TABLE app.t; -- \\' USE other','',0),\n"
    b'(2,-0.5e3,\'a\\\\\',"q""",1);\n/*!40000 ALTER TABLE `notes_note` ENABLE KEYS */;\nUNLOCK TABLES;\nCOMMIT;\n'
    b"# a comment with a quote ' in it\n-- another one: it's\n"
    b"-- Dump completed on 2026-01-01 12:00:00\n"
)


def guard_over(dump: bytes, chunk_size: int) -> dump_guard.StatementGuard:
    guard = dump_guard.StatementGuard()
    for start in range(0, len(dump), chunk_size):
        guard.feed(dump[start : start + chunk_size])
    guard.finish()
    return guard


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 64, 1 << 20])
@pytest.mark.parametrize(
    "dump", [MYSQLDUMP_STYLE, MARIADB11_STYLE, MARIADB_HEADER], ids=["mysqldump", "mariadb", "mariadb-dump 11.8"]
)
def test_the_guard_passes_every_dump_db_backup_makes_however_it_is_cut(dump, chunk_size):
    guard = guard_over(dump, chunk_size)
    assert (guard.found, guard.objects) == (None, False)
    assert guard.statements >= 3


ATTACKS = [
    ("DROP TABLE app.notes_note;\n", "a name in another database"),
    ("DROP TABLE `app`.`notes_note`;\n", "a name in another database"),
    ("DROP TABLE `app` . `notes_note`;\n", "a name in another database"),
    ("INSERT INTO `app`.`auth_user` VALUES (1);\n", "a name in another database"),
    ("RENAME TABLE `t` TO `app`.`t`;\n", "a name in another database"),
    ("CREATE USER x IDENTIFIED BY 'p';\nGRANT ALL ON *.* TO x;\n", "CREATE USER"),
    ("GRANT ALL ON *.* TO x;\n", "GRANT"),
    ("create\n  user x;\n", "CREATE USER"),
    ("/*!50000 GRANT ALL ON *.* TO x */;\n", "GRANT"),
    ("/*M!100000 DROP DATABASE app */;\n", "DROP DATABASE"),
    ("USE app;\nDROP TABLE notes_note;\n", "USE"),
    ("SET GLOBAL general_log = 1;\n", "SET GLOBAL"),
    ("SET @@global.read_only = 1;\n", "@@GLOBAL"),
    ("SET PASSWORD FOR root = 'x';\n", "SET PASSWORD"),
    ("SELECT 1 INTO OUTFILE '/tmp/x';\n", "INTO OUTFILE"),
    ("LOAD DATA INFILE '/etc/passwd' INTO TABLE t;\n", "LOAD DATA"),
    ("SELECT LOAD_FILE('/etc/shadow');\n", "LOAD_FILE"),
    ("SET @s = 'GR' 'ANT ALL ON *.* TO x';\nPREPARE s FROM @s;\nEXECUTE s;\n", "PREPARE"),
    ("CALL app.p();\n", "CALL"),
    ("INSERT INTO `t` VALUES (1);GRANT ALL ON *.* TO x;\n", "GRANT"),
    ("INSERT INTO `t` VALUES ('a\nb'); GRANT ALL ON *.* TO x;\n", "GRANT"),
    ("INSERT INTO `t` VALUES ('it\\'s'); GRANT ALL ON *.* TO x;\n", "GRANT"),
    ("CREATE TABLE `a'` (x int); GRANT ALL ON *.* TO x; CREATE TABLE `b'` (x int);\n", "GRANT"),
    ("-- a comment\nGRANT ALL ON *.* TO x;\n", "GRANT"),
    ("/* a comment ' */ GRANT ALL ON *.* TO x;\n", "GRANT"),
    ("/*!50013 DEFINER=`root`@`localhost` */ SELECT 1;\n", "DEFINER"),
]


@pytest.mark.parametrize("chunk_size", [1, 3, 1 << 20])
@pytest.mark.parametrize(("statement", "found"), ATTACKS, ids=[text for text, _ in ATTACKS])
def test_the_guard_finds_what_reaches_beyond_the_restored_database(statement, found, chunk_size):
    dump = MARIADB_HEADER.replace(b"UNLOCK TABLES;\n", b"UNLOCK TABLES;\n" + statement.encode(), 1)
    assert guard_over(dump, chunk_size).found == found


@pytest.mark.parametrize(
    "statement",
    ["CREATE VIEW `v` AS SELECT 1;", "CREATE PROCEDURE `p`() SELECT 1;",
     "/*!50003 CREATE*/ /*!50003 TRIGGER `t` BEFORE INSERT ON `a` FOR EACH ROW SET @x=1 */;",
     "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1;"],
)  # fmt: skip
def test_the_guard_sees_what_the_table_swap_cannot_move(statement):
    dump = MARIADB_HEADER.replace(b"UNLOCK TABLES;\n", b"UNLOCK TABLES;\n" + statement.encode() + b"\n", 1)
    assert guard_over(dump, 7).objects


@pytest.mark.parametrize(("statement", "words"), [
    ("DROP TABLE app.notes_note;\n", "reaches beyond the database it restores (a name in another database)"),
    ("CREATE USER x IDENTIFIED BY 'p';\nGRANT ALL ON *.* TO x;\n",
     "reaches beyond the database it restores (CREATE USER)"),
    ("CREATE VIEW `v` AS SELECT 1;\n", "views, triggers, routines or events"),
])  # fmt: skip
def test_verify_refuses_such_a_dump_behind_a_matching_manifest_in_one_line(tmp_path, statement, words):
    """The issue's attack: a hand-written dump ending in '-- Dump completed', its manifest recomputed to match."""
    dump = b"CREATE TABLE `a` (\n  `id` int\n);\n" + statement.encode() + b"-- Dump completed on 2026-01-01\n"
    path = write_backup(tmp_path, dump=dump)
    with pytest.raises(UserError) as error:
        backup_file.verify(path)
    assert words in str(error.value) and str(error.value).endswith("nothing was restored")
    assert "\n" not in str(error.value) and "'p'" not in str(error.value)


def test_the_restore_account_reaches_the_scratch_database_only():
    sql = sql_text.restore_account_sql("app__restore", "s3cret")
    assert sql.splitlines() == [
        "DROP USER IF EXISTS 'lifecycle_restore'@'localhost';",
        "CREATE USER 'lifecycle_restore'@'localhost' IDENTIFIED BY 's3cret';",
        "GRANT ALL PRIVILEGES ON `app\\_\\_restore`.* TO 'lifecycle_restore'@'localhost';",  # _ is a wildcard there
    ]
    assert sql_text.grant_scope("a%b`c\\d") == "`a\\%b``c\\\\d`"
    assert "WITH GRANT OPTION" not in sql and "*.*" not in sql


@pytest.mark.parametrize(
    ("after", "safety", "words"),
    [
        pytest.param({"tables": [["app.a", "1"]], "accounts": [["app", "%"]]}, None,
                     "the database app is unchanged (checked: the same tables, checksums and accounts as before)",
                     id="the same: unchanged, checked"),
        pytest.param({"tables": [["app.a", "2"]], "accounts": [["app", "%"]]}, Path("/b/x.sql.gz"),
                     "the tables of app differ from before the restore: the restore's account cannot write them, so "
                     "another client did meanwhile; the safety backup is /b/x.sql.gz", id="a checksum differs"),
        pytest.param({"tables": [["app.a", "1"]], "accounts": [["app", "%"], ["x", "%"]]}, None,
                     "the accounts of app differ from before the restore", id="an account appeared"),
        pytest.param(UserError("the db service is not running"), None,
                     "whether the database app changed could not be checked (the db service is not running); no "
                     "safety backup was taken (--no-backup)", id="cannot check: says so, never 'unchanged'"),
    ],
)  # fmt: skip
def test_a_failed_restore_says_unchanged_only_after_checking(tmp_path, monkeypatch, after, safety, words):
    before = {"tables": [["app.a", "1"]], "accounts": [["app", "%"]]}
    db = database(tmp_path, FakeStreams(b""))

    def fingerprint(name):
        if isinstance(after, Exception):
            raise after
        return after

    restoring = restore.Restore(db)
    monkeypatch.setattr(restoring, "fingerprint", fingerprint)
    message = restoring.compare_with("app", before, safety)
    assert words in message
    assert ("unchanged" in message) == (after == before)
