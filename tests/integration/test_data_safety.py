"""Your data, with the real engine: backups restore every row and byte, damaged backups are refused, a killed
restore leaves the previous data, destructive steps back up first, and an old backup migrates forward.

One prod stack (module fixture `stack`) is shared; each test states the data it starts from. The tests run in
file order because the last ones change the stack underneath (a new DB_IMAGE, `down --volumes`).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.checkout import HTTPS_PROXY_HEADERS, REPO_ROOT, IsolatedCheckout, copy_checkout
from tests.helpers.engine import docker, unique_name, wait_for
from tests.helpers.tools import assert_one_line, run_tool, start_tool

pytestmark = pytest.mark.integration

ROUND_TRIP_DATA = """
SET SESSION max_recursive_iterations = 1000000, group_concat_max_len = 20000000;
DROP TABLE IF EXISTS it_rows, it_blob, it_pairs_a, it_pairs_b;
CREATE TABLE it_rows (id INT PRIMARY KEY, label VARCHAR(60) CHARACTER SET utf8mb4, v DOUBLE NULL);
INSERT INTO it_rows SELECT n, CONCAT('row ', n, ' \U0001f642 \\\\ '' "),(', n), IF(n % 7 = 0, NULL, n / 3)
  FROM (WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 100000) SELECT n FROM seq) AS s;
CREATE TABLE it_blob (id INT PRIMARY KEY, b LONGBLOB NULL, t TEXT CHARACTER SET utf8mb4 NULL);
INSERT INTO it_blob SELECT 1, GROUP_CONCAT(UNHEX(SHA2(n, 256)) ORDER BY n SEPARATOR ''),
  '\U0001f600\U0001f44d\U0001f3fd na\u00efve\\nline\\ttab'
  FROM (WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 327680) SELECT n FROM seq) AS s;
INSERT INTO it_blob VALUES (2, NULL, NULL), (3, '', '');
"""
CHECKSUM = "CHECKSUM TABLE it_rows, it_blob"


# ------------------------------------------------------------------------------------------------- helpers
AS_ROOT = 'MYSQL_PWD="$(cat "$MYSQL_ROOT_PASSWORD_FILE")"'  # the compose secret (lifecycle/secretfiles.py)


def sql(stack: IsolatedCheckout, statement: str, database: str = "app") -> str:
    """Run SQL as root inside the db container (the password stays in the container: its secret file)."""
    (container,) = stack.containers("db")
    done = docker(
        "exec", container, "sh", "-c", f'{AS_ROOT} mariadb -uroot -N -B "$1" -e "$2"', "sh",
        database, statement,
    )  # fmt: skip
    return done.stdout


def invoke_ok(stack: IsolatedCheckout, *args: str, env: dict | None = None) -> str:
    done = stack.invoke_combined(*args, env=env)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def backups(stack: IsolatedCheckout) -> list[Path]:
    return sorted(stack.backups.glob("*.sql.gz")) if stack.backups.is_dir() else []


def manifest(path: Path) -> dict:
    return json.loads(path.with_name(path.name.removesuffix(".sql.gz") + ".json").read_text())


def take_backup(stack: IsolatedCheckout) -> Path:
    before = set(backups(stack))
    invoke_ok(stack, "db.backup")
    (new,) = set(backups(stack)) - before
    return new


def databases(stack: IsolatedCheckout) -> set[str]:
    return set(sql(stack, "SHOW DATABASES").split())


@pytest.fixture(scope="module")
def round_trip_data(stack) -> dict[str, str]:
    """100,000 rows, a 10 MiB pseudo-random BLOB, emoji and NULLs in the app database; their CHECKSUM TABLE."""
    sql(stack, ROUND_TRIP_DATA)
    return checksums(stack)


def checksums(stack: IsolatedCheckout) -> dict[str, str]:
    return dict(line.split("\t") for line in sql(stack, CHECKSUM).splitlines())


# --------------------------------------------------------------------------------------------- round trip
def test_round_trip_keeps_every_row_and_byte(stack, round_trip_data):
    path = take_backup(stack)
    counts = manifest(path)["tables"]
    assert counts["it_rows"] == 100_000 and counts["it_blob"] == 3
    assert manifest(path)["kind"] == "manual" and manifest(path)["migrations"]["notes"] == "0001_initial"
    sql(stack, "DELETE FROM it_rows WHERE id % 3 = 0; UPDATE it_blob SET b = NULL, t = 'changed'")
    assert checksums(stack) != round_trip_data
    output = invoke_ok(stack, "db.restore", str(path), "--yes")
    assert checksums(stack) == round_trip_data
    assert "the schema has every migration" in output, output[-3000:]
    assert databases(stack) & {"app__restore", "app__replaced"} == set()


# ------------------------------------------------------------------------------------------ restore drill
def test_a_drill_restores_the_newest_backup_elsewhere_and_leaves_the_stack_alone(stack, round_trip_data):
    path = take_backup(stack)
    (db_before,) = stack.containers("db")
    output = invoke_ok(stack, "db.drill")
    rows = sum(manifest(path)["tables"].values())
    line = assert_one_line(output, "drill PASSED", path.name, f"{rows} rows as its manifest says",
                           f"migrate --check with {stack.image('prod')}: no migration missing")  # fmt: skip
    assert " restored in " in line
    assert stack.containers("db") == [db_before] and checksums(stack) == round_trip_data
    drill = f"{stack.project}-drill"
    left = docker("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={drill}").stdout.split()
    assert left == [] and docker("volume", "inspect", f"{drill}_db-data", check=False).returncode != 0
    assert docker("image", "inspect", f"{drill}:prod", check=False).returncode != 0  # the drill's tag is gone


# -------------------------------------------------------------------------------------- backup under load
def write_pairs(stack: IsolatedCheckout, stop: threading.Event) -> subprocess.Popen:
    """A client inserting one row into each of two tables per transaction until stopped (at most 500,000)."""
    (container,) = stack.containers("db")
    writer = subprocess.Popen(
        ["docker", "exec", "-i", container, "sh", "-c", f"{AS_ROOT} exec mariadb -uroot app"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def feed() -> None:
        try:
            for n in range(500_000):
                if stop.is_set():
                    break
                pair = f"INSERT INTO it_pairs_a VALUES ({n}); INSERT INTO it_pairs_b VALUES ({n})"
                writer.stdin.write(f"BEGIN; {pair}; COMMIT;\n".encode())
            writer.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    return writer


def test_a_backup_taken_while_writes_run_matches_its_manifest(stack, round_trip_data):
    sql(stack, "CREATE TABLE it_pairs_a (n INT PRIMARY KEY); CREATE TABLE it_pairs_b (n INT PRIMARY KEY)")
    stop = threading.Event()
    writer = write_pairs(stack, stop)
    try:
        wait_for(lambda: int(sql(stack, "SELECT COUNT(*) FROM it_pairs_b")) > 100, timeout=60, what="the writer")
        path = take_backup(stack)
        still_writing = writer.poll() is None
    finally:
        stop.set()
        writer.wait(timeout=60)
    counts = manifest(path)["tables"]
    assert still_writing, "the writer finished before the backup did: the test proved nothing"
    assert counts["it_pairs_a"] == counts["it_pairs_b"] > 100, counts  # one snapshot: both halves of every pair
    invoke_ok(stack, "db.restore", str(path), "--yes", "--no-backup")  # checks every count against the manifest
    assert sql(stack, "SELECT COUNT(*) FROM it_pairs_a").strip() == str(counts["it_pairs_a"])
    sql(stack, "DROP TABLE it_pairs_a, it_pairs_b")


# ----------------------------------------------------------------------------------------- bad backups
def damaged_copies(path: Path, folder: Path) -> dict[str, Path]:
    data, manifest_text = path.read_bytes(), path.with_name(path.name.replace(".sql.gz", ".json")).read_text()
    damaged = {
        "truncated": data[: len(data) // 2],
        "corrupted": data[:5000] + bytes([data[5000] ^ 0x55]) + data[5001:],
        "empty": b"",
        "not gzip": b"DROP TABLE it_rows;\n" * 100,
    }
    copies = {}
    for kind, content in damaged.items():
        copy = folder / f"{kind.replace(' ', '-')}.sql.gz"
        copy.write_bytes(content)
        copy.with_name(copy.name.replace(".sql.gz", ".json")).write_text(manifest_text)
        copies[kind] = copy
    return copies


def test_damaged_backups_are_refused_in_one_line_and_change_nothing(stack, round_trip_data, tmp_path):
    good = backups(stack)[-1]
    before, files_before = checksums(stack), backups(stack)
    for kind, copy in damaged_copies(good, tmp_path).items():
        done = stack.invoke_combined("db.restore", str(copy), "--yes")
        assert done.returncode != 0, f"{kind}: {done.stdout[-2000:]}"
        assert_one_line(done.stdout, "nothing was restored")
        assert checksums(stack) == before, f"{kind} changed the database"
    assert backups(stack) == files_before, "a refused restore took a safety backup"


def test_a_restore_killed_half_way_leaves_the_previous_data(stack, round_trip_data):
    path = backups(stack)[-1]
    sql(stack, "CREATE TABLE it_marker (n INT); INSERT INTO it_marker VALUES (42)")
    before = checksums(stack)
    restore = start_tool("invoke", "db.restore", str(path), "--yes", "--no-backup", env=stack.env)
    try:
        wait_for(lambda: "app__restore" in databases(stack) and sql(stack, "SHOW TABLES", "app__restore"),
                 timeout=120, what="the restore to start loading", interval=0.1)  # fmt: skip
        os.killpg(restore.pid, signal.SIGSTOP)  # freeze it mid-load, then kill it: no step of it runs after this
        assert restore.poll() is None, "the restore finished before it could be killed"
        os.killpg(restore.pid, signal.SIGKILL)
    finally:
        restore.wait(timeout=60)
    assert checksums(stack) == before
    assert sql(stack, "SELECT n FROM it_marker").strip() == "42"
    invoke_ok(stack, "db.restore", str(path), "--yes", "--no-backup")  # a later restore still works
    assert checksums(stack) == round_trip_data
    assert databases(stack) & {"app__restore", "app__replaced"} == set()


# ------------------------------------------------------------------- hostile dumps (issue 23 Medium #6)
INTRUDER = "it_intruder"
ATTACKS = {
    "drop the live table": "DROP TABLE app.notes_note;\n",
    "create a user with every right": f"CREATE USER '{INTRUDER}'@'%' IDENTIFIED BY 'x';\n"
    f"GRANT ALL ON *.* TO '{INTRUDER}'@'%';\n",
}


def hand_written_backup(stack: IsolatedCheckout, folder: Path, attack: str) -> Path:
    """What the issue tried: a dump ending in '-- Dump completed', its manifest recomputed to match."""
    dump = ("CREATE TABLE `it_hand` (`n` int);\nINSERT INTO `it_hand` VALUES (1);\n" + ATTACKS[attack]
            + "-- Dump completed on 2026-01-01  0:00:00\n").encode()  # fmt: skip
    path = folder / f"{attack.replace(' ', '-')}-20260101T000000000Z.sql.gz"
    data = gzip.compress(dump)
    path.write_bytes(data)
    fields = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
              "created": "2026-01-01T00:00:00+00:00", "kind": "manual", "reason": "by hand", "project": stack.project,
              "database": "app", "server_image": "unknown", "server_version": "unknown", "dump_tool": "mariadb-dump",
              "tables": {"it_hand": 1}}  # fmt: skip
    path.with_name(path.name.replace(".sql.gz", ".json")).write_text(json.dumps(fields))
    return path


def live_state(stack: IsolatedCheckout) -> tuple[str, str, str]:
    """The live notes (read row by row), the live tables, and every account of the server."""
    return (sql(stack, "SELECT id, text FROM notes_note ORDER BY id"), sql(stack, "SHOW TABLES"),
            sql(stack, "SELECT User, Host FROM mysql.user ORDER BY User, Host"))  # fmt: skip


@pytest.fixture
def live_notes(stack) -> Iterator[tuple[str, str, str]]:
    sql(stack, "INSERT INTO notes_note (text, created_at) VALUES ('kept \U0001f642', NOW()), ('kept 2', NOW())")
    state = live_state(stack)
    assert "kept 2" in state[0] and INTRUDER not in state[2]
    yield state
    sql(stack, f"DELETE FROM notes_note; DROP USER IF EXISTS '{INTRUDER}'@'%'")


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_hand_written_dump_reaching_beyond_its_database_is_refused(stack, live_notes, tmp_path, attack):
    done = stack.invoke_combined("db.restore", str(hand_written_backup(stack, tmp_path, attack)), "--yes")
    assert done.returncode != 0, done.stdout[-3000:]
    assert_one_line(done.stdout, "reaches beyond the database it restores", "nothing was restored")
    assert live_state(stack) == live_notes


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_restore_account_cannot_reach_beyond_the_scratch_database(stack, live_notes, tmp_path, attack,
                                                                      monkeypatch, capfd):  # fmt: skip
    """With the scan switched off (a statement it might miss), the load itself fails: the dump runs as an account
    whose rights cover the scratch database only; and the message says 'unchanged' because it checked."""
    from lifecycle import backup, dump_guard
    from lifecycle.context import Context
    from lifecycle.errors import UserError
    from lifecycle.restore import Restore
    from lifecycle.runner import SubprocessRunner
    from lifecycle.settings import load_settings

    monkeypatch.setattr(dump_guard.StatementGuard, "_check", lambda self, statement: None)
    database = backup.Database(Context(load_settings(REPO_ROOT, environ=stack.env), SubprocessRunner(), say=print))
    with pytest.raises(UserError) as error:
        Restore(database).restore(hand_written_backup(stack, tmp_path, attack), yes=True, ask=None, no_backup=True)
    message = str(error.value)
    assert "failed" in message and "the database app is unchanged (checked: the same tables, checksums and " \
        "accounts as before)" in message, message  # fmt: skip
    assert "denied" in capfd.readouterr().err.lower()  # the server refused the statement, not the scan
    assert live_state(stack) == live_notes
    assert "lifecycle_restore" not in sql(stack, "SELECT User FROM mysql.user")  # dropped after the failure
    assert databases(stack) & {"app__restore", "app__replaced"} == set()


# --------------------------------------------------------------------------------------- migrations, reset
def page_status(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or HTTPS_PROXY_HEADERS)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def through_the_proxy(stack: IsolatedCheckout, path: str) -> int:
    from lifecycle.tls import local_files

    context = ssl.create_default_context(cafile=str(local_files(REPO_ROOT).ca))
    conn = http.client.HTTPSConnection("127.0.0.1", stack.https_port, timeout=30, context=context)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_backup_from_before_a_migration_restores_and_migrates_forward(stack):
    """Issue 24 #4: the restore applies the migrations the backup lacks with the running image, so the site
    serves pages (no 500); with --no-migrate /health says 'migrations pending' and the proxy stops sending it
    traffic (503, never a 500), while the container stays live."""
    (prod,) = stack.containers("prod")
    docker("exec", prod, "python", "manage.py", "migrate", "notes", "zero")
    sql(stack, "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
               "is_active, date_joined) VALUES ('!', 0, 'kept-\U0001f642', '', '', '', 0, 1, NOW())")  # fmt: skip
    path = take_backup(stack)
    assert "notes" not in manifest(path)["migrations"]
    docker("exec", prod, "python", "manage.py", "migrate")
    output = invoke_ok(stack, "db.restore", str(path), "--yes")
    assert "applying 1 migration(s) the backup lacks with the running prod image: notes.0001_initial" in output
    assert "the schema has every migration of the running code" in output
    assert "notes_note" in sql(stack, "SHOW TABLES")
    assert sql(stack, "SELECT username FROM auth_user").split() == ["kept-\U0001f642"]
    assert [page_status(stack.port, page)[0] for page in ("/", "/api/notes", "/health")] == [200, 200, 200]

    output = invoke_ok(stack, "db.restore", str(path), "--yes", "--no-backup", "--no-migrate")
    assert "the schema lacks 1 migration(s): notes.0001_initial (--no-migrate)" in output
    assert "invoke manage migrate --stage prod" in output
    status, body = page_status(stack.port, "/health")
    assert (status, json.loads(body)["status"]) == (503, "migrations pending")
    wait_for(lambda: through_the_proxy(stack, "/api/notes") == 503, timeout=30, what="the proxy to take prod out")
    assert stack.health("prod") == "healthy"  # live: a restart could not fix the schema
    invoke_ok(stack, "manage", "migrate --noinput", "--stage", "prod")
    wait_for(lambda: through_the_proxy(stack, "/api/notes") == 200, timeout=30, what="the proxy to take prod back")
    assert page_status(stack.port, "/health")[0] == 200


def test_reset_refuses_without_confirmation_then_backs_up_drops_and_migrates(stack):
    done = stack.invoke_combined("db.reset")
    assert done.returncode != 0
    assert_one_line(done.stdout, "--yes", "nothing was changed")
    assert sql(stack, "SELECT COUNT(*) FROM auth_user").strip() == "1"
    before = set(backups(stack))
    output = invoke_ok(stack, "db.reset", "--yes")
    (safety,) = set(backups(stack)) - before
    assert manifest(safety)["kind"] == "automatic" and manifest(safety)["tables"]["auth_user"] == 1
    assert sql(stack, "SELECT COUNT(*) FROM auth_user").strip() == "0"
    assert "it_rows" not in sql(stack, "SHOW TABLES") and "notes_note" in sql(stack, "SHOW TABLES")
    assert "reset app: migrated" in output
    listing = invoke_ok(stack, "db.list")
    assert f"{safety.name}" in listing and "automatic (before db.reset)" in listing


def test_qa_fails_naming_the_app_when_a_model_change_has_no_migration(engine, tmp_path):
    copy = copy_checkout(tmp_path / "checkout")
    models = copy / "django_site" / "notes" / "models.py"
    models.write_text(models.read_text().replace("    text = ", "    pinned = models.BooleanField(default=False)\n"
                                                 "    text = ", 1))  # fmt: skip
    proj_name = unique_name("it-gate")
    project = f"{proj_name}-{hashlib.sha256(str(copy.resolve()).encode()).hexdigest()[:8]}"
    try:
        done = run_tool("nox", "-s", "qa", "--", "-k", "test_every_model_change", env={"PROJ_NAME": proj_name},
                        cwd=copy, drop=("COMPOSE_PROJECT_NAME", "APP_PORT"))  # fmt: skip
        assert done.returncode != 0, done.stdout[-3000:]
        assert "Migrations for 'notes':" in done.stdout, done.stdout[-6000:]
        assert "a model change has no migration" in done.stdout
    finally:
        docker("image", "rm", f"{project}:test-qa", check=False)


# ------------------------------------------------------------------------------- changes under the stack
@pytest.fixture
def newer_major_images() -> Iterator[list[str]]:
    """The offline MariaDB image under tags of newer major versions (the same server: only the names change)."""
    tags = [f"{unique_name('it-db')}/mariadb:{major}.0" for major in (12, 13)]
    for tag in tags:
        docker("tag", "lifecycle/mariadb:11.8", tag)
    try:
        yield tags
    finally:
        docker("image", "rm", *tags, check=False)


def test_up_with_a_new_major_db_image_backs_up_first_unless_told_not_to(stack, newer_major_images):
    twelve, thirteen = newer_major_images
    before = set(backups(stack))
    output = invoke_ok(stack, "up", "--stage", "prod", "--no-build", env={"DB_IMAGE": twelve})
    assert "DB_IMAGE changed from lifecycle/mariadb:11.8 (server 11." in output and f"to {twelve}" in output
    (safety,) = set(backups(stack)) - before
    assert manifest(safety)["kind"] == "automatic" and "DB_IMAGE changed" in manifest(safety)["reason"]
    skipped = invoke_ok(stack, "up", "--stage", "prod", "--no-build", "--no-backup", env={"DB_IMAGE": thirteen})
    assert f"safety backup skipped (--no-backup) because DB_IMAGE changed from {twelve}" in skipped
    again = invoke_ok(stack, "up", "--stage", "prod", "--no-build", env={"DB_IMAGE": thirteen})
    assert "safety backup" not in again
    assert set(backups(stack)) - before == {safety}


def test_down_volumes_leaves_a_backup_that_restores_into_a_fresh_volume(stack):
    sql(stack, "CREATE TABLE it_last (v VARCHAR(20) CHARACTER SET utf8mb4); INSERT INTO it_last VALUES ('\U0001f44b')")
    before = set(backups(stack))
    invoke_ok(stack, "down")  # the data now sits in a volume with no server running: down --volumes starts one
    output = invoke_ok(stack, "down", "--volumes", "--yes")
    assert "safety backup before deleting the database volume" in output
    assert not stack.volume_exists()
    (safety,) = set(backups(stack)) - before
    invoke_ok(stack, "up", "--stage", "prod", "--no-build")
    assert "it_last" not in sql(stack, "SHOW TABLES")
    invoke_ok(stack, "db.restore", str(safety), "--yes")
    assert sql(stack, "SELECT v FROM it_last").strip() == "\U0001f44b"
