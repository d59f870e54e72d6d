"""Physical backups with the real engine: `db.backup --physical` of a database with rows, the rows changed,
`db.restore` of it brings back exactly the rows of the backup, and `db.drill` proves it; a truncated or changed
physical backup is refused in one line with the live rows unchanged, and nothing of the throwaway volumes or
servers is left.

Only the db service runs (no app image is built): physical backups need nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.checkout import IsolatedCheckout
from tests.helpers.engine import docker
from tests.helpers.tools import assert_one_line

pytestmark = pytest.mark.integration

AS_ROOT = 'MYSQL_PWD="$(cat "$MYSQL_ROOT_PASSWORD_FILE")"'
LABEL = "io.lifecycle.physical-scratch"


def sql(checkout: IsolatedCheckout, statement: str) -> str:
    (container,) = checkout.containers("db")
    return docker("exec", container, "sh", "-c", f'{AS_ROOT} mariadb -uroot -N -B app -e "$1"', "sh", statement).stdout


def invoke_ok(checkout: IsolatedCheckout, *args: str) -> str:
    done = checkout.invoke_combined(*args)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def rows(checkout: IsolatedCheckout) -> str:
    return sql(checkout, "SELECT id, note FROM phys ORDER BY id")


def manifest_of(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".mbstream.gz") + ".json")


def leftovers(checkout: IsolatedCheckout) -> list[str]:
    """The restore's throwaway volumes and servers of this checkout (there must be none after a task)."""
    label = f"label={LABEL}={checkout.project}"
    volumes = docker("volume", "ls", "--quiet", "--filter", label).stdout.split()
    containers = docker("ps", "--all", "--quiet", "--filter", label).stdout.split()
    return volumes + containers


@pytest.fixture(scope="module")
def backed_up() -> Iterator[tuple[IsolatedCheckout, Path]]:
    """One stack with a table of 300 rows and a physical backup of it (then the rows changed)."""
    checkout = IsolatedCheckout.new()
    try:
        invoke_ok(checkout, "compose", "up --detach --wait db")
        values = ", ".join(f"({i}, 'row {i}')" for i in range(1, 301))
        sql(checkout, f"CREATE TABLE phys (id INT PRIMARY KEY, note VARCHAR(40)); INSERT INTO phys VALUES {values}")
        invoke_ok(checkout, "db.backup", "--physical")
        (path,) = checkout.backups.glob("*.mbstream.gz")
        yield checkout, path
    finally:
        checkout.remove()


def test_a_physical_backup_records_its_method_and_counts_and_drills(backed_up) -> None:
    checkout, path = backed_up
    manifest = json.loads(manifest_of(path).read_text())
    assert (manifest["method"], manifest["tables"]["phys"]) == ("physical", 300)
    assert "physical" in invoke_ok(checkout, "db.list")
    drill = assert_one_line(invoke_ok(checkout, "db.drill"), "drill PASSED", path.name, "300 rows")
    assert "physical" in drill
    assert leftovers(checkout) == []


def test_a_damaged_physical_backup_is_refused_and_the_live_rows_stay(backed_up, tmp_path) -> None:
    checkout, path = backed_up
    sql(checkout, "DELETE FROM phys WHERE id > 100; UPDATE phys SET note = 'changed' WHERE id = 1")
    live = rows(checkout)
    data, manifest = path.read_bytes(), json.loads(manifest_of(path).read_text())
    for name, damaged, changes, word in (
        ("truncated", data[: len(data) // 2], {}, "truncated"),
        ("changed", data[:-64] + bytes(64), {}, "sha256"),
        ("counts", data, {"tables": {"phys": 301}}, "phys: 300 rows, manifest 301"),  # proved in a prepared copy
    ):
        bad = checkout.backups / f"{name}{path.name}"
        bad.write_bytes(damaged)
        manifest_of(bad).write_text(json.dumps({**manifest, **changes}))
        done = checkout.invoke_combined("db.restore", str(bad), "--yes", "--no-backup")
        assert done.returncode == 1, done.stdout[-3000:]
        assert_one_line(done.stdout, word, "nothing was restored")
        assert rows(checkout) == live
    assert leftovers(checkout) == []


def test_a_physical_restore_brings_back_exactly_the_backed_up_rows(backed_up) -> None:
    checkout, path = backed_up
    sql(checkout, "DELETE FROM phys WHERE id > 200; UPDATE phys SET note = 'later' WHERE id = 2")
    out = invoke_ok(checkout, "db.restore", str(path), "--yes")
    assert "restored" in out and "safety backup" in out
    assert rows(checkout) == "".join(f"{i}\trow {i}\n" for i in range(1, 301))
    assert leftovers(checkout) == []
    (safety,) = checkout.backups.glob("*.sql.gz")  # the safety backup, a logical one
    safety_manifest = safety.with_name(safety.name.removesuffix(".sql.gz") + ".json")
    assert json.loads(safety_manifest.read_text())["kind"] == "automatic"


def test_a_restored_server_that_never_turns_healthy_is_rolled_back(backed_up) -> None:
    """The swap's failure path for real: a backup taken while the app's account was renamed restores fine, but the
    db service's health check (a login as the app) fails on it: the previous data goes back and runs again."""
    checkout, _ = backed_up
    before = set(checkout.backups.glob("*.mbstream.gz"))
    sql(checkout, "RENAME USER 'app'@'%' TO 'app_off'@'%'; FLUSH TABLES")
    try:
        invoke_ok(checkout, "db.backup", "--physical")
    finally:
        sql(checkout, "RENAME USER 'app_off'@'%' TO 'app'@'%'")
    (no_app,) = set(checkout.backups.glob("*.mbstream.gz")) - before
    sql(checkout, "DELETE FROM phys WHERE id > 250")
    live = rows(checkout)
    done = checkout.invoke_combined("db.restore", str(no_app), "--yes", "--no-backup", env={"WAIT_TIMEOUT": "8"})
    assert done.returncode == 1, done.stdout[-3000:]
    assert_one_line(done.stdout, "did not turn healthy", "previous data is back in place and running")
    assert rows(checkout) == live
    assert leftovers(checkout) == []
