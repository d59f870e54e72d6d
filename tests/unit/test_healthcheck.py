"""docker/healthcheck.py, the container's liveness check, against a local server answering what /health can."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "healthcheck.py"


@pytest.mark.parametrize(
    ("status", "body", "healthy"),
    [
        pytest.param(200, {"status": "ok", "database": "reachable"}, True, id="ready"),
        pytest.param(503, {"status": "migrations pending", "database": "reachable", "pending": ["notes.0002"]}, True,
                     id="migrations pending: live, not ready (a restart cannot fix it)"),
        pytest.param(503, {"status": "error", "database": "unreachable"}, False, id="database unreachable"),
        pytest.param(500, {"status": "migrations pending"}, False, id="an error page never passes"),
        pytest.param(503, "not json", False, id="503 without the body"),
    ],
)  # fmt: skip
def test_liveness_passes_a_working_server_whose_schema_is_behind(status, body, healthy):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run([sys.executable, str(SCRIPT)], env={"PORT": str(server.server_port)},
                              capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    finally:
        server.shutdown()
    assert (done.returncode == 0) == healthy, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("health_path", "healthy"),
    [
        pytest.param("/healthz", True, id="HEALTH_PATH set: asks that path"),
        pytest.param(None, False, id="unset: asks /health, which this project does not answer"),
    ],
)
def test_liveness_asks_the_projects_health_path(health_path, healthy):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, data = (200, b'{"status": "ok"}') if self.path == "/healthz" else (404, b"not found")
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"PORT": str(server.server_port), **({"HEALTH_PATH": health_path} if health_path else {})}
    try:
        done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30,
                              check=False)  # fmt: skip
    finally:
        server.shutdown()
    assert (done.returncode == 0) == healthy, done.stdout + done.stderr
