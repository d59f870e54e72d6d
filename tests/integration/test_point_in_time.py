"""Point-in-time restore with the real engine: a row every 100 ms before, during and after a backup, the table
dropped, the database restored to a second after the backup holds exactly the rows committed before it (the rows
the backup holds and the binlog's replayed ones); after the volume is gone too. Bad
`--to` input is refused in one line, the rows unchanged.

Only the db service runs (no app image is built): `db.backup` and `db.restore --to` need nothing else.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.checkout import IsolatedCheckout
from tests.helpers.engine import docker, wait_for
from tests.helpers.tools import assert_one_line

pytestmark = pytest.mark.integration

AS_ROOT = 'MYSQL_PWD="$(cat "$MYSQL_ROOT_PASSWORD_FILE")"'
EVERY = 0.1
ROWS_BEFORE_BACKUP = 20
AFTER_BACKUP_S = 6  # rows keep coming this long after the backup: the restore to a second in between replays some


def sql(checkout: IsolatedCheckout, statement: str) -> str:
    (container,) = checkout.containers("db")
    done = docker("exec", container, "sh", "-c", f'{AS_ROOT} mariadb -uroot -N -B app -e "$1"', "sh", statement)
    return done.stdout


def invoke_ok(checkout: IsolatedCheckout, *args: str) -> str:
    done = checkout.invoke_combined(*args)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def start_db(checkout: IsolatedCheckout) -> None:
    invoke_ok(checkout, "compose", "up --detach --wait db")


@pytest.fixture(scope="module")
def db_only() -> Iterator[IsolatedCheckout]:
    checkout = IsolatedCheckout.new()
    try:
        start_db(checkout)
        yield checkout
    finally:
        checkout.remove()


def rows(checkout: IsolatedCheckout) -> dict[int, float]:
    return {int(i): float(at) for i, at in (line.split("\t") for line in sql(checkout, ROWS).splitlines())}


ROWS = "SELECT id, at FROM pitr_rows ORDER BY id"


class Writer(threading.Thread):
    """One client session inserting a row every 100 ms until stopped (10 minutes at most), each stamped with the
    server's own NOW(6) (its binlog event's time, to the second)."""

    def __init__(self, checkout: IsolatedCheckout) -> None:
        super().__init__(daemon=True)
        (container,) = checkout.containers("db")
        self.client = subprocess.Popen(
            ["docker", "exec", "-i", container, "sh", "-c", f"{AS_ROOT} exec mariadb -uroot app"],
            stdin=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not self.stop.is_set():
            self.client.stdin.write("INSERT INTO pitr_rows (at) VALUES (UNIX_TIMESTAMP(NOW(6)));\n")
            self.client.stdin.flush()
            time.sleep(EVERY)
        self.client.stdin.close()
        self.client.wait(timeout=30)


def newest_row_at(checkout: IsolatedCheckout) -> float:
    return float(sql(checkout, "SELECT COALESCE(MAX(at), 0) FROM pitr_rows").strip())


def test_restore_to_a_second_keeps_exactly_the_rows_committed_before_it(db_only):
    sql(db_only, "CREATE TABLE pitr_rows (id INT AUTO_INCREMENT PRIMARY KEY, at DECIMAL(17,6) NOT NULL)")
    writer = Writer(db_only)
    writer.start()
    try:
        count = "SELECT COUNT(*) FROM pitr_rows"
        wait_for(lambda: int(sql(db_only, count)) >= ROWS_BEFORE_BACKUP, timeout=60, what="rows before the backup")
        backup = invoke_ok(db_only, "db.backup")  # a full backup while the rows keep coming
        assert "binlogs: copied" in backup, backup[-3000:]
        backed_up = time.time()  # the engine's clock is this machine's: the backup's snapshot is before this
        wait_for(lambda: newest_row_at(db_only) >= backed_up + AFTER_BACKUP_S, timeout=120,
                 what=f"rows {AFTER_BACKUP_S} s after the backup")  # fmt: skip
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    assert writer.client.returncode == 0
    written = rows(db_only)
    after_backup = [at for at in written.values() if at > backed_up]
    assert len(after_backup) > 0.5 * AFTER_BACKUP_S / EVERY, len(after_backup)  # the writes kept coming
    sql(db_only, "DROP TABLE pitr_rows")

    target = datetime.fromtimestamp(int((backed_up + max(written.values())) / 2), UTC)  # a whole second after it
    expected = sorted(i for i, at in written.items() if at < target.timestamp())
    assert len(written) - len(after_backup) < len(expected) < len(written)
    when = f"{target:%Y-%m-%dT%H:%M:%SZ}"
    started = time.monotonic()
    output = invoke_ok(db_only, "db.restore", "--to", when, "--yes")
    print(f"restore --to: {time.monotonic() - started:.1f} s; {output.strip().splitlines()[-3:]}")
    assert sorted(rows(db_only)) == expected
    assert f"restored app to {when}" in output and "transaction(s) replayed" in output, output[-3000:]

    # The volume gone: the backups and the binlog copies beside them are enough.
    invoke_ok(db_only, "down", "--volumes", "--yes")
    start_db(db_only)
    invoke_ok(db_only, "db.restore", "--to", when, "--yes")
    assert sorted(rows(db_only)) == expected


@pytest.mark.parametrize(
    ("to", "words"),
    [
        ("2026-12-03T14:05:00", ["has no time zone"]),
        ((datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), ["is after now"]),
        ("2001-01-01T00:00:00Z", ["is before every usable backup"]),
    ],
    ids=["no-zone", "after-now", "before-the-oldest-backup"],
)
def test_a_bad_time_is_refused_in_one_line_and_nothing_changes(db_only, to, words):
    sql(db_only, "CREATE TABLE IF NOT EXISTS pitr_rows (id INT AUTO_INCREMENT PRIMARY KEY, at DECIMAL(17,6) NOT NULL);"
                 "INSERT INTO pitr_rows (at) VALUES (UNIX_TIMESTAMP(NOW(6)))")  # fmt: skip
    before = sql(db_only, "CHECKSUM TABLE pitr_rows") + sql(db_only, "SELECT COUNT(*) FROM pitr_rows")
    done = db_only.invoke_combined("db.restore", "--to", to, "--yes")
    assert done.returncode != 0, done.stdout[-3000:]
    assert_one_line(done.stdout, *words, "nothing was changed")
    assert sql(db_only, "CHECKSUM TABLE pitr_rows") + sql(db_only, "SELECT COUNT(*) FROM pitr_rows") == before


@pytest.mark.parametrize("damage", ["tampered", "gap", "another-server"])
def test_a_changed_or_missing_binlog_copy_is_refused_in_one_line_and_nothing_changes(db_only, damage):
    """A byte changed in a copy (its size kept, so the restore does not copy it again), a copy missing that the
    server has purged too, or a copy of another server's (its sidecar names that server) among this server's copies:
    refused before anything changes."""
    sql(db_only, "CREATE TABLE IF NOT EXISTS pitr_rows (id INT AUTO_INCREMENT PRIMARY KEY, at DECIMAL(17,6) NOT NULL)")
    invoke_ok(db_only, "db.backup")
    for _ in range(3):
        sql(db_only, "INSERT INTO pitr_rows (at) VALUES (UNIX_TIMESTAMP(NOW(6)))")
        invoke_ok(db_only, "db.backup", "--binlogs")
    (newest,) = sorted(db_only.backups.glob("*.json"))[-1:]
    base = json.loads(newest.read_text())
    folder = db_only.backups / "binlogs" / base["binlog_origin"]
    stem, number = base["binlog_file"].rsplit(".", 1)
    victim = folder / f"{stem}.{int(number) + 2:06d}"
    if damage == "tampered":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        words = ["does not match its sidecar's sha256"]
    elif damage == "another-server":
        sidecar = victim.with_name(victim.name + ".json")
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "origin": "another-server-uuid"}))
        words = [f"binlog {victim.name} comes from another server (another-server-uuid"]
    else:
        current = sql(db_only, "SHOW MASTER STATUS").split()[0]
        sql(db_only, f"PURGE BINARY LOGS TO '{current}'")
        victim.unlink()
        victim.with_name(victim.name + ".json").unlink()
        words = ["the binlogs have a gap", f"is followed by {stem}.{int(number) + 3:06d}"]
    time.sleep(1.1)
    before = sql(db_only, "CHECKSUM TABLE pitr_rows") + sql(db_only, "SELECT COUNT(*) FROM pitr_rows")
    when = f"{datetime.now(UTC) - timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}"
    done = db_only.invoke_combined("db.restore", "--to", when, "--yes")
    assert done.returncode != 0, done.stdout[-3000:]
    assert_one_line(done.stdout, *words, "nothing was changed")
    assert sql(db_only, "CHECKSUM TABLE pitr_rows") + sql(db_only, "SELECT COUNT(*) FROM pitr_rows") == before


def test_scheduled_retention_prunes_only_the_binlog_copies_no_kept_backup_needs(db_only, tmp_path):
    """Two scheduled backups in one hour, one kept (BACKUP_HOURLY=1): the copies older than its binlog position go,
    and a restore to a time after it still finds every copy it needs."""
    folder = tmp_path / "backups"
    env = {"BACKUP_DIR": str(folder), "BACKUP_HOURLY": "1", "BACKUP_DAILY": "0", "BACKUP_WEEKLY": "0"}
    sql(db_only, "CREATE TABLE IF NOT EXISTS pitr_rows (id INT AUTO_INCREMENT PRIMARY KEY, at DECIMAL(17,6) NOT NULL)")
    outputs = []
    for _ in range(2):
        sql(db_only, "INSERT INTO pitr_rows (at) VALUES (UNIX_TIMESTAMP(NOW(6)))")
        done = db_only.invoke_combined("db.backup", "--scheduled", env=env)
        assert done.returncode == 0, done.stdout[-3000:]
        outputs.append(done.stdout)
    (manifest,) = folder.glob("*.json")  # the first backup pruned
    kept = json.loads(manifest.read_text())
    copies = folder / "binlogs" / kept["binlog_origin"]
    left = sorted(path.name for path in copies.iterdir() if not path.name.endswith(".json"))
    start = int(kept["binlog_file"].rsplit(".", 1)[1])
    assert "binlog copies older than every kept backup" in outputs[1], outputs[1][-3000:]
    assert kept["binlog_file"] in left and all(int(name.rsplit(".", 1)[1]) >= start for name in left), left

    sql(db_only, "INSERT INTO pitr_rows (at) VALUES (UNIX_TIMESTAMP(NOW(6)))")
    time.sleep(1.1)  # the time below is after the row's second
    before = sql(db_only, "CHECKSUM TABLE pitr_rows")
    done = db_only.invoke_combined("db.restore", "--to", f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}", "--yes", env=env)
    assert done.returncode == 0, done.stdout[-3000:]
    assert sql(db_only, "CHECKSUM TABLE pitr_rows") == before
