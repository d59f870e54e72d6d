"""lifecycle_site/mediafiles.py: the uploads' server on a real folder, called as a WSGI server calls it."""

from __future__ import annotations

import io
import os
from email.utils import formatdate
from pathlib import Path

import pytest

from lifecycle_site.mediafiles import MediaFiles, media_path


def project(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the project"]


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A media volume as lifecycle/media.py lays it out: `current` a link to the live set."""
    live = tmp_path / "sets" / "initial"
    (live / "photos").mkdir(parents=True)
    (live / "photos" / "chair.png").write_bytes(b"\x89PNG not really")
    (live / "page.html").write_text("<script>alert(1)</script>")
    (live / "notes.tar.gz").write_bytes(b"gz")
    (live / ".env").write_text("SECRET=1")
    (tmp_path / "outside.txt").write_text("not media")
    (live / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "current").symlink_to(live)
    return tmp_path / "current"


def call(app, path: str, method: str = "GET", **headers: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict = {}
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(), **headers}
    body = b"".join(app(environ, lambda status, hdrs: seen.update(status=status, headers=dict(hdrs))))
    return seen["status"], seen["headers"], body


@pytest.mark.parametrize(
    ("path", "status", "content_type", "body"),
    [
        ("/media/photos/chair.png", "200 OK", "image/png", b"\x89PNG not really"),
        ("/media/page.html", "200 OK", "text/html", b"<script>alert(1)</script>"),  # sandboxed: see the headers
        ("/media/notes.tar.gz", "200 OK", "application/octet-stream", b"gz"),  # never Content-Encoding: gzip
        ("/media/photos/", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),  # no listing
        ("/media/photos", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),
        ("/media/", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),
        ("/media/../outside.txt", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),
        ("/media/photos/../../outside.txt", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),
        ("/media/escape.txt", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),  # a link out
        ("/media/.env", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),  # hidden names
        ("/media/missing.png", "404 Not Found", "text/plain; charset=utf-8", b"404 Not Found"),
        ("/admin/", "200 OK", "text/plain", b"the project"),  # anything else: the project's
        ("/mediafiles/x", "200 OK", "text/plain", b"the project"),
    ],
)
def test_what_each_path_answers(media, path, status, content_type, body):
    got_status, headers, got_body = call(MediaFiles(project, "/media/", str(media)), path)
    assert (got_status, headers["Content-Type"], got_body) == (status, content_type, body)
    if path.startswith("/media/"):
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in headers["Content-Security-Policy"]


def test_head_has_the_length_and_no_body_and_other_methods_are_refused(media):
    app = MediaFiles(project, "media/", str(media))  # a relative MEDIA_URL (startproject's) is the same path
    status, headers, body = call(app, "/media/photos/chair.png", "HEAD")
    assert (status, headers["Content-Length"], body) == ("200 OK", "15", b"")
    status, headers, _ = call(app, "/media/photos/chair.png", "POST")
    assert (status, headers["Allow"]) == ("405 Method Not Allowed", "GET, HEAD")


def test_an_unchanged_file_is_not_sent_again(media):
    app = MediaFiles(project, "/media/", str(media))
    mtime = os.stat(media / "photos" / "chair.png").st_mtime
    status, _, body = call(app, "/media/photos/chair.png", HTTP_IF_MODIFIED_SINCE=formatdate(mtime + 1, usegmt=True))
    assert (status, body) == ("304 Not Modified", b"")
    status, _, _ = call(app, "/media/photos/chair.png", HTTP_IF_MODIFIED_SINCE=formatdate(mtime - 60, usegmt=True))
    assert status == "200 OK"
    status, _, _ = call(app, "/media/photos/chair.png", HTTP_IF_MODIFIED_SINCE="yesterday")
    assert status == "200 OK"


def test_the_root_is_resolved_per_request_so_a_restore_swap_is_followed(media, tmp_path):
    restored = tmp_path / "sets" / "restored"
    restored.mkdir()
    (restored / "after.txt").write_text("restored")
    assert media_path(str(media), "after.txt") is None
    (tmp_path / "next").symlink_to(restored)
    os.replace(tmp_path / "next", media)  # what db.restore does: one rename of `current`
    assert media_path(str(media), "after.txt") == str(restored / "after.txt")
