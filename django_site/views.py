import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


@require_safe
def health(request):
    """200 when the default database answers `SELECT 1`, 503 when it does not; never an error page."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        logger.warning("health check: database unreachable: %s", error)
        drop_broken_connection()
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "reachable"})


def drop_broken_connection():
    """Close the connection so the next request opens a fresh one once the database is back."""
    try:
        connection.close()
    except DatabaseError:
        # Closing a connection to a dead server can itself fail; it is discarded either way.
        logger.debug("health check: closing the broken connection failed", exc_info=True)
