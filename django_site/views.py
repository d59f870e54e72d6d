import functools
import logging

from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.http import JsonResponse
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

MIGRATIONS_PENDING = "migrations pending"


@require_safe
def health(request):
    """Readiness: 200 when the database answers and has every migration of this code; 503 otherwise, saying which.

    - 503 {"status": "error", "database": "unreachable"}: the database does not answer.
    - 503 {"status": "migrations pending", ...}: the schema is behind the code (a restored old backup, say), so
      pages would answer 500; the proxy takes the server out of rotation until `manage.py migrate` has run.
    A schema ahead of the code (a rolling update's old replicas) is fine. Never an error page."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        pending = unapplied_leaf_migrations()
    except DatabaseError as error:
        logger.warning("health check: database unreachable: %s", error)
        drop_broken_connection()
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    if pending:
        logger.warning("health check: %s: %s", MIGRATIONS_PENDING, ", ".join(pending))
        return JsonResponse({"status": MIGRATIONS_PENDING, "database": "reachable", "pending": pending}, status=503)
    return JsonResponse({"status": "ok", "database": "reachable"})


@functools.cache
def code_leaf_migrations():
    """The last migration of each app in this code, with the migrations a squashed one replaces (read once:
    the code does not change under a running process)."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return tuple((key, tuple(graph.nodes[key].replaces or ())) for key in sorted(graph.leaf_nodes()))


def unapplied_leaf_migrations():
    """The code's last migrations the database has not applied, as "app.name" (one small query per call).

    A squashed migration counts as applied when the migrations it replaces are, as `migrate` itself decides."""
    applied = set(MigrationRecorder(connection).applied_migrations())
    return [f"{app}.{name}" for (app, name), replaces in code_leaf_migrations()
            if (app, name) not in applied and not (replaces and set(replaces) <= applied)]  # fmt: skip


def drop_broken_connection():
    """Close the connection so the next request opens a fresh one once the database is back."""
    try:
        connection.close()
    except DatabaseError:
        # Closing a connection to a dead server can itself fail; it is discarded either way.
        logger.debug("health check: closing the broken connection failed", exc_info=True)
