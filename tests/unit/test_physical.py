"""Physical backups: every command line (options -> exact argv), the binlog record, the names and listing of both
methods, and the swap's shell steps run for real on folders (copy, switch, rollback, finish)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifecycle.backup_file import (
    PHYSICAL,
    PHYSICAL_SUFFIX,
    SUFFIX,
    Manifest,
    listing,
    manifest_path,
    new_backup_path,
    read_manifests,
)
from lifecycle.commands import physical
from lifecycle.physical import binlog_fields, state

IMAGE, VOLUME, NAME, LABEL = "lifecycle/mariadb:11.8", "p-physical-1a2b", "p-physical-1a2b", "io.l=p"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(physical.backup_argv("c0ffee"), ["docker", "exec", "c0ffee", "sh", "-c", physical.BACKUP, "sh"],
                     id="backup: docker exec on the db container's id, the stream on stdout"),
        pytest.param(physical.volume_create_argv(VOLUME, LABEL), ["docker", "volume", "create", "--label", LABEL,
                     VOLUME], id="scratch volume, labelled"),
        pytest.param(physical.unpack_argv(IMAGE, VOLUME),
                     ["docker", "run", "--rm", "-i", "--network", "none", "--user", "mysql", "--volume",
                      f"{VOLUME}:/var/lib/mysql", "--entrypoint", "sh", IMAGE, "-c", physical.UNPACK, "sh"],
                     id="unpack + prepare: throwaway, no network, the server's user"),
        pytest.param(physical.serve_argv(IMAGE, VOLUME, NAME, LABEL),
                     ["docker", "run", "--detach", "--name", NAME, "--label", LABEL, "--network", "none", "--user",
                      "mysql", "--volume", f"{VOLUME}:/var/lib/mysql", "--entrypoint", "mariadbd", IMAGE,
                      "--skip-grant-tables", "--skip-networking", "--user=mysql"],
                     id="throwaway server: no network, no TCP, no accounts"),
        pytest.param(physical.ping_argv(NAME), ["docker", "exec", NAME, "mariadb-admin", "--silent", "ping"],
                     id="ping"),
        pytest.param(physical.query_argv(NAME, "SELECT 1"),
                     ["docker", "exec", NAME, "mariadb", "--batch", "--skip-column-names", "--execute=SELECT 1"],
                     id="query"),
        pytest.param(physical.binlog_info_argv(NAME), ["docker", "exec", NAME, "sh", "-c", physical.BINLOG_INFO],
                     id="binlog record"),
        pytest.param(physical.stop_container_argv(NAME), ["docker", "stop", "--time", "60", NAME], id="clean stop"),
        pytest.param(physical.remove_container_argv(NAME), ["docker", "rm", "--force", "--volumes", NAME],
                     id="remove"),
        pytest.param(physical.swap_argv(IMAGE, "p_db-data", VOLUME, "switch"),
                     ["docker", "run", "--rm", "--network", "none", "--user", "0", "--volume", "p_db-data:/live",
                      "--volume", f"{VOLUME}:/new:ro", "--entrypoint", "sh", IMAGE, "-c",
                      physical.SWAP_STEPS["switch"]], id="swap step: both volumes, the copy read-only"),
    ],
)  # fmt: skip
def test_physical_argv(argv, expected):
    assert argv == expected


def test_no_password_reaches_a_command_line():
    assert "MYSQL_PWD" in physical.BACKUP and "--password" not in physical.BACKUP
    assert "_FILE" in physical.BACKUP  # the secret file, as the dump reads it


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ("binlog.000003\t864\t0-1-6\n", ("binlog.000003", 864, "0-1-6")),
        ("binlog.000003\t864\n", ("binlog.000003", 864, "")),
        ("", ("", 0, "")),
        ("garbage", ("", 0, "")),
    ],
)
def test_binlog_fields(info, expected):
    assert binlog_fields(info) == expected


def test_both_methods_share_names_manifests_and_the_listing(tmp_path):
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    logical, _ = new_backup_path(tmp_path, "p", now)
    logical.write_bytes(b"x")
    physical_path, _ = new_backup_path(tmp_path, "p", now, PHYSICAL_SUFFIX)  # the same millisecond is taken
    assert (logical.name, physical_path.name) == ("p-20261204T120000000Z.sql.gz", "p-20261204T120000001Z.mbstream.gz")
    assert manifest_path(physical_path).name == "p-20261204T120000001Z.json"
    physical_path.write_bytes(b"y")
    for path, method in ((logical, "logical"), (physical_path, PHYSICAL)):
        manifest = Manifest(path.name, "", 1, now.isoformat(), "manual", "by hand", "p", "app", "i", "11.8", "d",
                            method=method)  # fmt: skip
        manifest_path(path).write_text(manifest.to_json())
    found = read_manifests(tmp_path)
    assert [path.name for path, _ in found] == [physical_path.name, logical.name]  # newest first
    lines = listing(found, now.timestamp())
    assert " physical manual " in lines[0] and " logical manual " in lines[1]
    assert Manifest.from_json('{"file": "a", "sha256": "", "size": 0, "created": "", "kind": "manual", "reason": '
                              '"", "project": "p", "database": "app", "server_image": "", "server_version": "", '
                              '"dump_tool": ""}').method == "logical"  # fmt: skip


def test_the_suffixes_differ():
    assert SUFFIX != PHYSICAL_SUFFIX


# ------------------------------------------------------------------------------------- the swap, for real
def step(root: Path, name: str) -> int:
    script = (
        physical.SWAP_STEPS[name].replace(physical.LIVE, str(root / "live")).replace(physical.NEW, str(root / "new"))
    )
    return subprocess.run(["sh", "-c", script], check=False).returncode


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def volumes(tmp_path):
    live, new = tmp_path / "live", tmp_path / "new"
    for folder, text in ((live, "old"), (new, "restored")):
        (folder / "app").mkdir(parents=True)
        (folder / "app" / "t.ibd").write_text(text)
        (folder / "ibdata1").write_text(text)
        (folder / ".hidden").write_text(text)
    (live / physical.KEEP).write_text("marker")
    return tmp_path


def test_copy_then_switch_puts_the_copy_in_place_and_keeps_the_old_data_aside(volumes):
    live = volumes / "live"
    assert step(volumes, "copy") == 0
    assert tree(live)["ibdata1"] == "old"  # copying touches nothing of the data
    assert step(volumes, "switch") == 0
    assert {k: v for k, v in tree(live).items() if not k.startswith(physical.REPLACED)} == {
        "app/t.ibd": "restored", "ibdata1": "restored", ".hidden": "restored", physical.KEEP: "marker"}  # fmt: skip
    assert tree(live / physical.REPLACED) == {"app/t.ibd": "old", "ibdata1": "old", ".hidden": "old"}
    assert step(volumes, "finish") == 0
    assert not (live / physical.REPLACED).exists()


def test_rollback_after_a_switch_brings_the_old_data_back(volumes):
    live = volumes / "live"
    before = tree(live)
    assert step(volumes, "copy") == 0 and step(volumes, "switch") == 0
    assert step(volumes, "rollback") == 0
    assert tree(live) == before


def test_discard_drops_a_copy_never_switched_in(volumes):
    live = volumes / "live"
    before = tree(live)
    assert step(volumes, "copy") == 0 and step(volumes, "discard") == 0
    assert tree(live) == before


def test_the_failure_states_say_where_the_data_is():
    assert state(True, True) == "the previous data is back in place and running"
    assert "did not start" in state(True, False)
    assert physical.REPLACED in state(False, False)
