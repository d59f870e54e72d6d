"""lifecycle.media and lifecycle/media_volume.py: the media volume's argv, its manifest part, and the pack ->
verify -> unpack -> swap round trip of the script the helper container runs (run here on a folder: it is plain
Python). The real volume, the real backup and restore: tests/integration/test_media.py."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from lifecycle import deploy, media
from lifecycle import media_volume as volume
from lifecycle.adopt import has_media
from lifecycle.commands import compose as cmd
from lifecycle.commands import media as media_argv
from lifecycle.commands import swarm
from lifecycle.errors import UserError
from lifecycle.settings import load_settings
from lifecycle.stages import PROD

ROOT = Path("/checkout")
OFF = load_settings(root=ROOT, environ={"PROJ_NAME": "shop", "COMPOSE_PROJECT_NAME": "shop-test"})
ON = load_settings(root=ROOT, environ={"PROJ_NAME": "shop", "COMPOSE_PROJECT_NAME": "shop-test", "MEDIA": "true"})
SCRIPT = media_argv.SCRIPT.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- argv tables
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            cmd.compose_argv(OFF, "up", stage=PROD),
            ["docker", "compose", "--project-name", "shop-test", "--file", "/checkout/docker/compose.yaml",
             "--profile", "prod", "up"],
            id="no media: no media file, no volume",
        ),
        pytest.param(
            cmd.compose_argv(ON, "up", stage=PROD),
            ["docker", "compose", "--project-name", "shop-test", "--file", "/checkout/docker/compose.yaml",
             "--file", "/checkout/docker/compose.media.yaml", "--profile", "prod", "up"],
            id="MEDIA=true adds the media volume file",
        ),
        pytest.param(
            cmd.compose_argv(ON, "up", file="docker/registry.yaml"),
            ["docker", "compose", "--project-name", "shop-test", "--file", "/checkout/docker/registry.yaml",
             "--profile", "*", "up"],
            id="other compose files never get it",
        ),
        pytest.param(
            media_argv.helper_argv(ON, "shop-test_media", "pack"),
            ["docker", "run", "--rm", "--network", "none", "--user", "10001:10001", "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges:true",
             "--mount", "type=volume,source=shop-test_media,target=/var/lib/app/media,readonly",
             "--entrypoint", "python3", "python:3.12-slim", "-c", SCRIPT, "pack", "/var/lib/app/media"],
            id="pack: read-only, as the app's user",
        ),
        pytest.param(
            media_argv.helper_argv(ON, "shop-test_media", "unpack", "shop-1", write=True),
            ["docker", "run", "--rm", "--interactive", "--network", "none", "--user", "0:0", "--cap-drop", "ALL",
             "--cap-add=CHOWN", "--cap-add=DAC_OVERRIDE", "--cap-add=FOWNER", "--cap-add=FSETID",
             "--security-opt", "no-new-privileges:true",
             "--mount", "type=volume,source=shop-test_media,target=/var/lib/app/media",
             "--entrypoint", "python3", "python:3.12-slim", "-c", SCRIPT, "unpack", "/var/lib/app/media", "shop-1"],
            id="unpack: stdin, writable, root with four capabilities",
        ),
    ],
)  # fmt: skip
def test_argv(argv, expected):
    assert argv == expected


def test_the_stack_gets_the_media_file_only_with_media():
    assert media.STACK_FILE not in [str(p.relative_to(ROOT)) for p in deploy.stack_files(OFF)]
    assert [str(p.relative_to(ROOT)) for p in deploy.stack_files(ON)] == [swarm.STACK_FILE, swarm.DB_FILE,
                                                                          media.STACK_FILE]  # fmt: skip


def test_media_is_a_true_or_false_setting():
    with pytest.raises(UserError, match=r"^MEDIA='yes please' is not a boolean; set it to true or false"):
        load_settings(root=ROOT, environ={"MEDIA": "yes please"})


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ({}, False),
        ({"MEDIA_URL": "''"}, False),
        ({"MEDIA_ROOT": "None"}, False),
        ({"MEDIA_URL": "'/media/'"}, True),
        ({"MEDIA_ROOT": "os.path.join(BASE_DIR, 'media')"}, True),
    ],
)
def test_adopt_decides_media_from_media_root_and_url(found, expected):
    class Found:
        media = found

    assert has_media(Found) is expected  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- the manifest part
@pytest.mark.parametrize(
    ("part", "ok"),
    [
        ({}, True),
        ({"file": "a.media.tar", "sha256": "ab", "size": 3, "files": {"x.png": "cd"}}, True),
        ({"file": "a.media.tar", "sha256": "ab", "size": -1, "files": {}}, False),
        ({"file": "a.media.tar", "sha256": "ab", "size": True, "files": {}}, False),
        ({"file": "a.media.tar", "sha256": "ab", "size": 3, "files": {"x.png": 1}}, False),
        ({"file": "a.media.tar", "sha256": "ab", "size": 3}, False),
        ([], False),
    ],
)
def test_manifest_part_types(part, ok):
    assert media.is_part(part) is ok


def test_mismatches_name_each_file():
    assert media.hash_mismatches({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"}) == [
        "c missing", "b differs", "d not in the manifest"]  # fmt: skip


# -------------------------------------------------------------------------------- the script's round trip
def uploads(root: Path, files: dict[str, bytes]) -> None:
    """What Django's FileSystemStorage does under MEDIA_ROOT (root/current)."""
    volume.ensure_layout(root)
    for name, data in files.items():
        path = root / "current" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def packed(root: Path) -> bytes:
    out = io.BytesIO()
    volume.pack(root, out)
    return out.getvalue()


def backup_with_media(tmp_path: Path, root: Path) -> tuple[Path, dict]:
    backup = tmp_path / "backups" / "shop-20260101T000000000Z.sql.gz"
    backup.parent.mkdir(exist_ok=True)
    media.media_path(backup).write_bytes(packed(root))
    sha256, size = media.file_digest(media.media_path(backup))
    part = {"file": media.media_path(backup).name, "sha256": sha256, "size": size,
            "files": media.archive_hashes(media.media_path(backup))}  # fmt: skip
    return backup, part


def test_pack_unpack_swap_round_trip(tmp_path):
    root = tmp_path / "volume"
    files = {"original_images/cat.jpg": os.urandom(70_000), "documents/a b ü.pdf": b"%PDF-1.7\n", "top.txt": b""}
    uploads(root, files)
    backup, part = backup_with_media(tmp_path, root)
    assert part["files"] == volume.hashes(root / "current") and len(part["files"]) == 3
    media.verify(backup, part)  # nothing to say

    # A change after the backup: one file gone, one changed, one new.
    (root / "current" / "top.txt").unlink()
    (root / "current" / "documents" / "a b ü.pdf").write_bytes(b"changed")
    (root / "current" / "new.txt").write_bytes(b"after the backup")

    with media.media_path(backup).open("rb") as stream:
        volume.unpack(root, "restore-1", stream)
    assert volume.hashes(root / "sets" / "restore-1.partial") == part["files"]
    assert (root / "current" / "new.txt").exists()  # staged beside the live set, which is untouched
    old = volume.swap(root, "restore-1")
    assert old == "sets/initial" and not (root / "sets" / "initial").exists()
    assert os.readlink(root / "current") == "sets/restore-1"
    assert {name: path.read_bytes() for name, path in volume.walk(root / "current") if path.is_file()} == files
    assert (root / "current" / "documents").stat().st_mode & 0o7777 == volume.DIR_MODE


def test_pack_skips_links_and_keeps_no_owners(tmp_path):
    root = tmp_path / "volume"
    uploads(root, {"a.txt": b"a"})
    (root / "current" / "link").symlink_to("/etc/passwd")
    with tarfile.open(fileobj=io.BytesIO(packed(root))) as archive:
        members = archive.getmembers()
    assert [(m.name, m.uid, m.uname) for m in members] == [("a.txt", 0, "")]


@pytest.mark.parametrize(
    ("member", "kind"),
    [("../escape.txt", tarfile.REGTYPE), ("/etc/cron.d/x", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)],
)
def test_unpack_refuses_what_escapes_the_set(tmp_path, member, kind):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(member)
        info.type, info.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        archive.addfile(info, io.BytesIO(b""))
    buffer.seek(0)
    with pytest.raises(SystemExit):
        volume.unpack(tmp_path / "volume", "bad", buffer)
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", r"is \d+ bytes, its manifest says \d+ \(truncated or changed\); nothing was restored$"),
        ("flip", r"does not match its manifest's sha256 \(corrupted or changed\); nothing was restored$"),
        ("list", r"does not match its manifest's file list \(a.txt differs\); nothing was restored$"),
        ("missing", r"media archive .*\.media\.tar is missing; nothing was restored$"),
    ],
)
def test_verify_refuses_a_damaged_media_archive(tmp_path, damage, message):
    root = tmp_path / "volume"
    uploads(root, {"a.txt": b"a" * 5000})
    backup, part = backup_with_media(tmp_path, root)
    tar = media.media_path(backup)
    if damage == "truncate":
        tar.write_bytes(tar.read_bytes()[:-1024])
    elif damage == "flip":
        data = bytearray(tar.read_bytes())
        data[600] ^= 1
        tar.write_bytes(bytes(data))
    elif damage == "list":
        part = {**part, "files": {"a.txt": "0" * 64}}
    else:
        tar.unlink()
    with pytest.raises(UserError, match=message):
        media.verify(backup, part)


def test_the_script_runs_standalone(tmp_path):
    """As the helper container runs it: `python3 -c SOURCE hashes ROOT`, no import of lifecycle."""
    import subprocess
    import sys

    root = tmp_path / "volume"
    uploads(root, {"x/y.txt": b"y"})
    done = subprocess.run([sys.executable, "-I", "-c", SCRIPT, "hashes", str(root)], capture_output=True, text=True,
                          check=True, cwd=tmp_path)  # fmt: skip
    assert json.loads(done.stdout) == {"x/y.txt": volume.file_sha256(root / "current" / "x" / "y.txt")}


def test_the_stack_gets_the_scheduler_only_with_jobs(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.lifecycle.jobs]]\nname = "rows"\nschedule = "0 3 * * *"\ncommand = "clearsessions"\n', encoding="utf-8"
    )
    with_jobs = load_settings(root=tmp_path, environ={"COMPOSE_PROJECT_NAME": "shop-test"})
    assert [str(p.relative_to(tmp_path)) for p in deploy.stack_files(with_jobs)] == [
        swarm.STACK_FILE, swarm.DB_FILE, swarm.JOBS_FILE]  # fmt: skip
    assert swarm.JOBS_FILE not in [str(p.relative_to(ROOT)) for p in deploy.stack_files(OFF)]
