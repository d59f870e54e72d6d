"""User uploads with the real engine (MEDIA=true): they land on their own volume through Django's own storage, owned
by the app's UID, survive `down`/`up`, and db.backup/db.restore carry them with the rows: one backup, one manifest,
every file checked, the set swapped in whole; a damaged media archive is refused before anything changes.

One prod stack of django_site with MEDIA=true (module fixture `stack`); tests run in file order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.checkout import IsolatedCheckout
from tests.helpers.engine import docker
from tests.helpers.tools import assert_one_line

pytestmark = pytest.mark.integration

MEDIA_ROOT = "/var/lib/app/media/current"
SAVE = (
    "import sys; from django.core.files.base import ContentFile; from django.core.files.storage import default_storage"
    " as s; print(s.save(sys.argv[1], ContentFile(sys.argv[2].encode())))"
)


@pytest.fixture(scope="module")
def stack(engine) -> Iterator[IsolatedCheckout]:
    project = IsolatedCheckout.new(settings={"MEDIA": "true"})
    try:
        done = project.invoke_combined("up", "--stage", "prod")
        assert done.returncode == 0, done.stdout[-4000:]
        yield project
    finally:
        project.remove()


def app(stack: IsolatedCheckout) -> str:
    (container,) = stack.containers("prod")
    return container


def upload(stack: IsolatedCheckout, name: str, text: str) -> str:
    """Saved as the app saves an upload: Django's default storage, in the running prod container."""
    done = docker("exec", app(stack), "python", "-c", f"import django; django.setup(); {SAVE}", name, text)
    return done.stdout.strip()


def media_files(stack: IsolatedCheckout) -> dict[str, str]:
    """{name: sha256} under MEDIA_ROOT, read in the app container."""
    script = (
        "import hashlib, json, pathlib; r = pathlib.Path('" + MEDIA_ROOT + "'); print(json.dumps({str(p.relative_to(r))"
        ": hashlib.sha256(p.read_bytes()).hexdigest() for p in r.rglob('*') if p.is_file()}))"
    )
    return json.loads(docker("exec", app(stack), "python", "-c", script).stdout)


def sql(stack: IsolatedCheckout, statement: str) -> str:
    (container,) = stack.containers("db")
    shell = 'MYSQL_PWD="$(cat "$MYSQL_ROOT_PASSWORD_FILE")" mariadb -uroot -N -B app -e "$1"'
    return docker("exec", container, "sh", "-c", shell, "sh", statement).stdout


def invoke_ok(stack: IsolatedCheckout, *args: str) -> str:
    done = stack.invoke_combined(*args)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def latest_backup(stack: IsolatedCheckout) -> Path:
    return sorted(stack.backups.glob("*.sql.gz"))[-1]


def test_uploads_land_on_the_volume_as_the_app_and_survive_down_up(stack):
    saved = upload(stack, "uploads/first.txt", "first upload")
    assert saved == "uploads/first.txt"
    owner = docker("exec", app(stack), "stat", "-c", "%u:%g %a", f"{MEDIA_ROOT}/{saved}").stdout.split()
    assert owner == ["10001:10001", "664"]
    mounts = docker("inspect", "--format", "{{range .Mounts}}{{.Name}} {{.Destination}};{{end}}", app(stack)).stdout
    assert f"{stack.project}_media /var/lib/app/media" in mounts
    invoke_ok(stack, "down")
    invoke_ok(stack, "up", "--stage", "prod")
    assert media_files(stack) == {"uploads/first.txt": hashlib.sha256(b"first upload").hexdigest()}


def test_backup_and_restore_carry_the_media_with_the_rows(stack):
    upload(stack, "images/ü photo.txt", "second")
    sql(stack, "INSERT INTO notes_note (text, created_at) VALUES ('with media', NOW())")
    before, rows = media_files(stack), sql(stack, "SELECT COUNT(*) FROM notes_note")
    output = invoke_ok(stack, "db.backup")
    assert "2 media file(s)" in output, output[-2000:]
    path = latest_backup(stack)
    part = json.loads(path.with_name(path.name.removesuffix(".sql.gz") + ".json").read_text())["media"]
    assert part["files"] == before and path.with_name(part["file"]).stat().st_size == part["size"]

    upload(stack, "uploads/after.txt", "after the backup")
    docker("exec", app(stack), "rm", f"{MEDIA_ROOT}/uploads/first.txt")
    sql(stack, "DELETE FROM notes_note")
    output = invoke_ok(stack, "db.restore", str(path), "--yes")
    assert "restored 2 media file(s)" in output, output[-2000:]
    assert media_files(stack) == before
    assert sql(stack, "SELECT COUNT(*) FROM notes_note") == rows
    # The safety backup before the restore carried the media as they were (the file uploaded after the backup).
    safety = json.loads(sorted(stack.backups.glob("*.json"))[-1].read_text())
    assert safety["kind"] == "automatic" and "uploads/after.txt" in safety["media"]["files"]


def test_a_damaged_media_archive_is_refused_before_anything_changes(stack):
    path = latest_backup(stack)
    part = json.loads(path.with_name(path.name.removesuffix(".sql.gz") + ".json").read_text())["media"]
    archive = path.with_name(part["file"])
    data = bytearray(archive.read_bytes())
    data[700] ^= 1
    archive.write_bytes(bytes(data))
    before = media_files(stack)
    done = stack.invoke_combined("db.restore", str(path), "--yes")
    assert done.returncode != 0
    assert_one_line(done.stdout, "does not match its manifest's sha256", "nothing was restored")
    assert media_files(stack) == before
