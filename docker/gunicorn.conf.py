"""Gunicorn settings for stage and prod, from the environment with sane defaults.

SIGTERM (what `docker stop` sends) is gunicorn's graceful stop: workers finish their requests for up
to GUNICORN_GRACEFUL_TIMEOUT seconds. Keep that below the container's stop grace period.
"""

import os
import sys

from gunicorn.glogging import Logger

HEALTHCHECK_USER_AGENT = "lifecycle-healthcheck"  # what docker/healthcheck.py and the proxy's checks send


class QuietHealthCheckLogger(Logger):
    """The access log without the health checks of the container and the proxy; other /health calls stay."""

    def access(self, resp, req, environ, request_time):
        if req.path == "/health" and environ.get("HTTP_USER_AGENT") == HEALTHCHECK_USER_AGENT:
            return
        super().access(resp, req, environ, request_time)


def _whole_number(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or int(raw) < minimum:
        sys.exit(f"{name}={raw!r} is not a whole number >= {minimum}; fix it in .env or the environment")
    return int(raw)


_port = _whole_number("PORT", 8000)
if _port > 65535:
    sys.exit(f"PORT={_port} is not a port number; set it to a number from 1 to 65535")

bind = f"0.0.0.0:{_port}"
workers = _whole_number("GUNICORN_WORKERS", 2)
# Threads (gunicorn's gthread worker) overlap the database round trips: on 2 cores, 4 threads per worker
# served the database page ~2.5x faster than sync workers at 16 connections (nox -s bench).
threads = _whole_number("GUNICORN_THREADS", 4)
timeout = _whole_number("GUNICORN_TIMEOUT", 30)
graceful_timeout = _whole_number("GUNICORN_GRACEFUL_TIMEOUT", 8)
keepalive = _whole_number("GUNICORN_KEEPALIVE", 5)
max_requests = _whole_number("GUNICORN_MAX_REQUESTS", 0, minimum=0)
max_requests_jitter = max_requests // 10
accesslog = "-"
logger_class = QuietHealthCheckLogger
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The root filesystem is read-only: heartbeat files go to memory.
worker_tmp_dir = "/dev/shm"
# TLS ends at a proxy in front of the container; trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
# Gunicorn's control socket defaults to $HOME/.gunicorn, which is read-only here.
control_socket = "/tmp/gunicorn.ctl"
