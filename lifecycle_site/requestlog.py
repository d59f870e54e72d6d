"""Request-traced JSON logs for every adopted project: one JSON object per line, each with the request's id.

The HTTPS proxy gives every request an id (docker/proxy/haproxy.cfg: a UUID, a client's own X-Request-ID replaced),
passes it on as X-Request-ID and returns it to the client. `RequestId` (a WSGI wrapper around the project's
application, lifecycle_site/wsgi.py) keeps it for the duration of the request, and `JsonFormatter` (the settings
layer's LOGGING when LOG_FORMAT is json) writes it into each record Django and the project log meanwhile, as
gunicorn's access log does (docker/gunicorn.conf.py). `invoke logs --request ID` then finds one request everywhere.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what a log line may carry: no newline, no quote, bounded


def request_id_of(environ: dict) -> str:
    raw = environ.get("HTTP_X_REQUEST_ID", "")
    return raw if SAFE_ID.fullmatch(raw) else ""


class RequestId:
    """WSGI wrapper: the proxy's X-Request-ID, for the log records written while the application answers."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        token = REQUEST_ID.set(request_id_of(environ))
        try:
            return self.app(environ, start_response)
        finally:
            REQUEST_ID.reset(token)


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "request_id"[, "exception"]}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)
