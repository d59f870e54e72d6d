"""User uploads served from the media volume around any WSGI application: GET/HEAD under MEDIA_URL answers the file
from MEDIA_ROOT before the project's middleware and URLs (Django serves media only with DEBUG, which stage and prod
never have). Safe for files anyone uploaded: no directory listing, nothing outside MEDIA_ROOT (`..`, links that
leave it, hidden names), no execution, the type from the name only with `X-Content-Type-Options: nosniff`, and a
sandbox Content-Security-Policy, so an uploaded HTML or SVG file cannot run script on the site's origin. The body
goes out through the server's file wrapper (gunicorn: sendfile), not through Python."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterable
from email.utils import formatdate, parsedate_to_datetime

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]

SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; sandbox"),
    ("Cache-Control", "no-cache"),  # revalidated (Last-Modified): a storage may overwrite a file under its name
]


def media_path(root: str, relative: str) -> str | None:
    """The regular file `relative` names under `root` (both resolved now: db.restore swaps the set `current` points
    at), or None: a hidden or `..` segment, a NUL, a folder, a link that leaves the root, nothing there."""
    parts = relative.split("/")
    if not relative or "\0" in relative or "\\" in relative or any(p.startswith(".") for p in parts if p):
        return None
    base = os.path.realpath(root)
    found = os.path.realpath(os.path.join(base, *[p for p in parts if p]))
    if not found.startswith(base + os.sep) or not os.path.isfile(found):
        return None
    return found


def not_modified(environ: dict, mtime: float) -> bool:
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not since:
        return False
    try:
        return int(mtime) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


def chunks(handle) -> Iterable[bytes]:
    with handle:
        while block := handle.read(65536):
            yield block


class MediaFiles:
    """`app` with everything under `url` (MEDIA_URL, a local path) answered from `root` (MEDIA_ROOT)."""

    def __init__(self, app: WsgiApp, url: str, root: str):
        self.app = app
        self.prefix = "/" + url.strip("/") + "/"
        self.root = root

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.prefix):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return self.plain(start_response, "405 Method Not Allowed", [("Allow", "GET, HEAD")])
        found = media_path(self.root, path[len(self.prefix) :])
        if found is None:
            return self.plain(start_response, "404 Not Found")
        stat = os.stat(found)
        modified = [("Last-Modified", formatdate(stat.st_mtime, usegmt=True))]
        if not_modified(environ, stat.st_mtime):
            start_response("304 Not Modified", modified + SECURITY_HEADERS)
            return [b""]
        content_type, encoding = mimetypes.guess_type(found)
        if encoding or not content_type:  # a .gz is a gzip file to the browser, never an encoding to undo
            content_type = "application/octet-stream"
        headers = [("Content-Type", content_type), ("Content-Length", str(stat.st_size)), *modified]
        start_response("200 OK", headers + SECURITY_HEADERS)
        if method == "HEAD":
            return [b""]
        handle = open(found, "rb")  # noqa: SIM115 - closed by the server through the file wrapper
        wrapper = environ.get("wsgi.file_wrapper")
        return wrapper(handle, 65536) if wrapper else chunks(handle)

    @staticmethod
    def plain(start_response: Callable, status: str, extra: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
        body = status.encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                                *(extra or []), *SECURITY_HEADERS])  # fmt: skip
        return [body]
