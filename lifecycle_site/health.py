"""A health endpoint around any WSGI application: GET/HEAD HEALTH_PATH answers 200 when the database answers
`SELECT 1`, 503 when it does not, before the project's URLs, middleware and ALLOWED_HOSTS are involved."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def database_answers() -> bool:
    """Whether Django's default database answers `SELECT 1`; a broken connection is dropped for the next try."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        logger.warning("health check: database unreachable: %s", error)
        try:
            connection.close()
        except DatabaseError:
            logger.debug("health check: closing the broken connection failed", exc_info=True)
        return False
    return True


class HealthCheck:
    """`app` with `path` (and `path/`) answered here: JSON, never an error page, never cached."""

    def __init__(self, app: WsgiApp, path: str = "/health", check: Callable[[], bool] = database_answers):
        self.app = app
        self.paths = {path.rstrip("/"), path.rstrip("/") + "/"}
        self.check = check

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in self.paths or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        ok = self.check()
        body = json.dumps({"status": "ok" if ok else "error", "database": "reachable" if ok else "unreachable"})
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")],
        )
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body.encode()]
