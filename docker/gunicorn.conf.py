"""Gunicorn settings for stage and prod, from the environment with sane defaults.

SIGTERM (what `docker stop` sends) is gunicorn's graceful stop: workers finish their requests for up
to GUNICORN_GRACEFUL_TIMEOUT seconds. Keep that below the container's stop grace period.
"""

import ipaddress
import json
import logging
import os
import re
import shutil
import sys
import time

from gunicorn.glogging import Logger

HEALTHCHECK_USER_AGENT = "lifecycle-healthcheck"  # what docker/healthcheck.py and the proxy's checks send
# HEALTH_PATH ([tool.lifecycle] health-path), with or without its trailing slash, as the suite's wrapper answers it.
HEALTH_PATHS = {(os.environ.get("HEALTH_PATH") or "/health").rstrip("/") + end for end in ("", "/")}


LOG_FORMAT = os.environ.get("LOG_FORMAT", "").strip().lower() or "json"  # or text (lifecycle_site/requestlog.py)
SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonLines(logging.Formatter):
    """gunicorn's own messages (start, workers, errors) as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}  # fmt: skip
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def access_record(status: str, method: str, path: str, environ: dict, sent: int, seconds: float) -> str:
    """One access log line as JSON, with the proxy's request id (X-Request-ID)."""
    request_id = environ.get("HTTP_X_REQUEST_ID", "")
    return json.dumps({
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "logger": "gunicorn.access", "request": f"{method} {path}",
        "method": method, "path": path, "user_agent": environ.get("HTTP_USER_AGENT", ""),
        "status": int(status.split()[0]) if status.split()[:1] and status.split()[0].isdigit() else status,
        "bytes": sent, "ms": round(seconds * 1000, 1), "client": environ.get("REMOTE_ADDR", ""),
        "request_id": request_id if SAFE_ID.fullmatch(request_id) else "",
    }, ensure_ascii=False)  # fmt: skip


class QuietHealthCheckLogger(Logger):
    """The access log without the health checks of the container and the proxy; other HEALTH_PATH calls stay.
    With LOG_FORMAT=json (the default) every line is one JSON object carrying the request's id."""

    def setup(self, cfg):
        super().setup(cfg)
        if LOG_FORMAT == "json":
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonLines())

    def access(self, resp, req, environ, request_time):
        if req.path in HEALTH_PATHS and environ.get("HTTP_USER_AGENT") == HEALTHCHECK_USER_AGENT:
            return
        if LOG_FORMAT != "json":
            super().access(resp, req, environ, request_time)
            return
        seconds = request_time.total_seconds()
        self.access_log.info(access_record(str(resp.status), req.method, req.path, environ, resp.sent or 0, seconds))


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


def trusted_peers(route_table: str) -> str:
    """The peers whose X-Forwarded-* headers count: loopback, and every network the container is directly on
    (the proxy's compose or overlay network) except its gateways, which is where a published port's traffic
    comes from (docker-proxy or NAT): a local user on the host's 127.0.0.1:APP_PORT cannot claim HTTPS.

    `route_table` is /proc/net/route: hex little-endian destination, gateway and mask per interface route."""
    networks, gateways = [], set()
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination, gateway, mask = (ipaddress.IPv4Address(int(f, 16).to_bytes(4, "little")) for f in
                                      (fields[1], fields[2], fields[7]))  # fmt: skip
        if int(gateway):
            gateways.add(gateway)
        elif int(mask):
            networks.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    trusted = ["127.0.0.1", "::1"]
    for network in networks:
        parts = [network]
        for gateway in gateways:
            parts = [piece for part in parts for piece in
                     (part.address_exclude(ipaddress.IPv4Network(gateway)) if gateway in part else [part])]  # fmt: skip
        trusted += [str(part) for part in sorted(parts)]
    return ",".join(trusted)


def _route_table() -> str:
    try:
        with open("/proc/net/route", encoding="ascii") as table:
            return table.read()
    except OSError:
        return ""


# TLS ends at a proxy in front of the container: gunicorn takes the scheme from X-Forwarded-Proto only when the
# proxy sent it (trusted_peers), and Django asks gunicorn (wsgi.url_scheme), not the header itself.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS") or trusted_peers(_route_table())
# Gunicorn's control socket defaults to $HOME/.gunicorn, which is read-only here.
control_socket = "/tmp/gunicorn.ctl"

# The app's /metrics (the settings layer's METRICS part, lifecycle_site/metrics.py) with several workers: each worker
# writes its values into PROMETHEUS_MULTIPROC_DIR and /metrics sums them (prometheus_client's multiprocess mode). The
# folder is in /dev/shm (memory in every container; the swarm stack has no /tmp tmpfs), emptied when gunicorn starts
# (no count of an earlier run is summed in); a worker's files stay after it exits, so counters never go back, and its
# live gauges are dropped (child_exit).
METRICS = (os.environ.get("LAYER_METRICS") or "true").strip().lower() not in ("0", "false", "no", "off")
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or "/dev/shm/prometheus-metrics"
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={MULTIPROC_DIR}"] if METRICS else []  # the master's and workers' environment


def fresh_directory(path: str) -> None:
    """`path` as an empty folder only this user reads (a mount point there keeps itself, emptied)."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, mode=0o700, exist_ok=True)


def on_starting(server) -> None:
    if not METRICS:
        return
    try:
        fresh_directory(MULTIPROC_DIR)
    except OSError as error:  # the site still serves; /metrics then shows one worker's counts, and says nothing sums
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        server.log.warning("PROMETHEUS_MULTIPROC_DIR=%s cannot be made (%s): /metrics counts per worker", MULTIPROC_DIR,
                           error.strerror)  # fmt: skip


def child_exit(server, worker) -> None:
    if METRICS and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        try:
            from prometheus_client import multiprocess
        except ImportError:  # an image without the metrics library (LAYER_METRICS was off when its lock was made)
            return
        multiprocess.mark_process_dead(worker.pid, MULTIPROC_DIR)
