"""Faults with the real engine: a database that is late, goes away or comes back; SIGTERM in the middle of a
request; a worker killed by SIGKILL; sustained load; a failing or interrupted `nox -s qa`; two checkouts at once.

Everything runs under names no other run uses (`it-<random>` projects, images, networks and containers), and
everything a test makes is removed in a `finally`. Every wait has a deadline.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.checkout import HTTPS_PROXY_HEADERS, PROD_RUN_OPTIONS, copy_checkout
from tests.helpers.engine import unique_name
from tests.helpers.tools import assert_one_line, interrupt_when_running, last_line, start_tool

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------------------------- helpers
def http_get(port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def try_get(port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 10):
    try:
        return http_get(port, path, headers, timeout)
    except OSError:
        return None


def host_port(engine, container: str) -> int:
    out = engine.docker("port", container, "8000/tcp").stdout.strip().splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def inspect(engine, container: str, fmt: str) -> str:
    return engine.docker("inspect", "--format", fmt, container).stdout.strip()


@dataclass
class PrivateDb:
    network: str
    container: str
    alias: str
    password: str


def db_ready(engine, container: str) -> bool:
    return engine.docker("exec", container, "mariadb-healthcheck.sh", check=False).returncode == 0 or (
        inspect(engine, container, "{{if .State.Health}}{{.State.Health.Status}}{{end}}") == "healthy"
    )


@contextmanager
def private_network(engine) -> Iterator[str]:
    network = engine.unique_name("it-net")
    engine.docker("network", "create", "--label", "it.test=faults", network)
    try:
        yield network
    finally:
        engine.docker("network", "rm", network, check=False)


@contextmanager
def db_container(engine, settings, network: str, alias: str, password: str) -> Iterator[str]:
    env = {**os.environ, "MYSQL_PASSWORD": password, "MYSQL_ROOT_PASSWORD": secrets.token_hex(12)}
    with engine.docker_container(
        settings["DB_IMAGE"],
        "--network",
        network,
        "--network-alias",
        alias,
        "--init",
        "-e",
        "MYSQL_DATABASE=app",
        "-e",
        "MYSQL_USER=app",
        "-e",
        "MYSQL_PASSWORD",
        "-e",
        "MYSQL_ROOT_PASSWORD",
        prefix="it-db",
        env=env,
    ) as name:
        yield name


@contextmanager
def app_container(
    engine,
    image: str,
    network: str,
    db: PrivateDb | None = None,
    *,
    db_host: str = "db",
    password: str = "x",
    extra: tuple[str, ...] = (),
    secret_key: str | None = None,
) -> Iterator[str]:
    """The prod image run as compose runs it (init, read-only, tmpfs, no capabilities), on a private network."""
    env = {
        **os.environ,
        "DJANGO_SECRET_KEY": secret_key or secrets.token_urlsafe(50),
        "DB_PASSWORD": db.password if db else password,
    }
    host = db.alias if db else db_host
    with engine.docker_container(
        image,
        "--network",
        network,
        *PROD_RUN_OPTIONS,
        "--stop-timeout",
        "15",
        "-p",
        "127.0.0.1::8000",
        "-e",
        f"DB_HOST={host}",
        "-e",
        "DB_PASSWORD",
        "-e",
        "DJANGO_SECRET_KEY",
        "-e",
        "GUNICORN_FORWARDED_ALLOW_IPS=*",  # the tests' X-Forwarded-Proto stands in for the TLS proxy
        *extra,
        prefix="it-app",
        env=env,
    ) as name:
        yield name


def app_healthy(engine, container: str) -> bool:
    return engine.docker("exec", container, "python3", "/usr/local/bin/healthcheck.py", check=False).returncode == 0


@pytest.fixture(scope="module")
def private_db(engine, settings) -> Iterator[PrivateDb]:
    """A network and a database container of our own, for app containers started with `docker run`."""
    password = secrets.token_hex(12)
    with private_network(engine) as network:
        alias = "db"
        with db_container(engine, settings, network, alias, password) as name:
            engine.wait_for(lambda: db_ready(engine, name), timeout=180, what="the private database", interval=1)
            yield PrivateDb(network, name, alias, password)


# ------------------------------------------------------------------------------------ 1. database late or absent
def test_app_waits_for_a_database_that_starts_late(engine, stack, settings):
    password = secrets.token_hex(12)
    with (
        private_network(engine) as network,
        app_container(engine, stack.image("prod"), network, db_host="late-db", password=password) as app,
    ):
        time.sleep(5)
        assert inspect(engine, app, "{{.State.Running}}") == "true", engine.docker("logs", app).stderr
        with db_container(engine, settings, network, "late-db", password):
            engine.wait_for(lambda: app_healthy(engine, app), timeout=180, what="the app to turn healthy", interval=2)
            assert inspect(engine, app, "{{.RestartCount}}") == "0"


@pytest.mark.parametrize(
    ("db_host", "says"),
    [
        pytest.param("no-such-db", "the name no-such-db does not resolve", id="a name that does not resolve"),
        pytest.param("localhost", "localhost resolves to", id="a name that resolves, nothing listening"),
    ],
)
def test_app_without_database_exits_with_one_line_naming_db_wait_timeout(engine, stack, db_host, says):
    with private_network(engine) as network:
        started = time.monotonic()
        with app_container(
            engine, stack.image("prod"), network, db_host=db_host, extra=("-e", "DB_WAIT_TIMEOUT=3")
        ) as app:
            engine.wait_for(
                lambda: inspect(engine, app, "{{.State.Running}}") == "false",
                timeout=30,
                what="the app to give up on the database",
                interval=0.25,
            )
            elapsed = time.monotonic() - started
            code = int(inspect(engine, app, "{{.State.ExitCode}}"))
            logs = engine.docker("logs", app)
            output = logs.stdout + logs.stderr
    assert code != 0
    assert elapsed < 12, f"took {elapsed:.1f}s with DB_WAIT_TIMEOUT=3"
    assert_one_line(output, "DB_WAIT_TIMEOUT", db_host, says, "try: invoke down && invoke up")


# ----------------------------------------------------------------------------------- 2. database restarted
def test_health_is_503_while_database_is_down_and_recovers_without_app_restart(engine, stack, private_db):
    with app_container(engine, stack.image("prod"), private_db.network, private_db) as app:
        engine.wait_for(lambda: app_healthy(engine, app), timeout=180, what="the app to turn healthy", interval=1)
        port = host_port(engine, app)
        before = inspect(engine, app, "{{.State.StartedAt}} {{.State.Pid}} {{.RestartCount}}")
        assert http_get(port, "/health")[0] == 200
        engine.docker("stop", private_db.container)
        try:

            def unavailable():
                got = try_get(port, "/health")
                return got if got and got[0] == 503 else None

            _status, body = engine.wait_for(unavailable, timeout=30, what="/health to answer 503")
            assert "Traceback" not in body
            assert json.loads(body)["database"] == "unreachable"
        finally:
            engine.docker("start", private_db.container)
        engine.wait_for(lambda: db_ready(engine, private_db.container), timeout=120, what="the database back")

        def available():
            got = try_get(port, "/health")
            return got if got and got[0] == 200 else None

        _status, body = engine.wait_for(available, timeout=60, what="/health to answer 200 again")
        assert json.loads(body)["database"] == "reachable"
        after = inspect(engine, app, "{{.State.StartedAt}} {{.State.Pid}} {{.RestartCount}}")
        assert after == before, "the app container was restarted"


# ----------------------------------------------------------------------------------- 4. SIGTERM mid-request
def test_sigterm_lets_a_slow_request_finish_and_exits_zero(engine, stack, private_db):
    with app_container(engine, stack.image("prod"), private_db.network, private_db) as app:
        engine.wait_for(lambda: app_healthy(engine, app), timeout=180, what="the app to turn healthy", interval=1)
        port = host_port(engine, app)
        body = json.dumps({"text": "written while the container stops " + uuid.uuid4().hex}).encode()
        head = (
            "POST /api/notes HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        half = len(body) // 2
        stop = {}

        def stop_container():
            began = time.monotonic()
            stop["result"] = engine.docker("stop", "--time", "15", app, check=False)
            stop["seconds"] = time.monotonic() - began

        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(head + body[:half])
            time.sleep(0.5)  # the worker has the request and waits for the rest of the body
            stopper = threading.Thread(target=stop_container)
            stopper.start()
            time.sleep(1)
            client.sendall(body[half:])
            response = b""
            while chunk := client.recv(65536):
                response += chunk
        stopper.join(timeout=60)
        assert not stopper.is_alive(), "docker stop did not return within 60 s"
        status_line = response.split(b"\r\n", 1)[0].decode()
        assert " 201 " in status_line, response[:500]
        assert stop["result"].returncode == 0, stop["result"].stderr
        assert stop["seconds"] < 10, f"docker stop took {stop['seconds']:.1f}s of a 15 s grace period"
        assert inspect(engine, app, "{{.State.ExitCode}}") == "0", engine.docker("logs", app).stderr[-2000:]


# ----------------------------------------------------------------------------------- 5. worker SIGKILLed
PROCESS_TABLE = r"""
import os
for pid in sorted(int(p) for p in os.listdir('/proc') if p.isdigit()):
    try:
        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\0', b' ').replace(b'\n', b' ').decode().strip()
        ppid = [l.split()[1] for l in open(f'/proc/{pid}/status') if l.startswith('PPid:')][0]
    except OSError:
        continue
    print(pid, ppid, cmd)
"""


def gunicorn_workers(engine, container: str) -> tuple[int, set[int]]:
    """(master pid, worker pids): gunicorn processes whose parent is the gunicorn master."""
    out = engine.docker("exec", container, "python3", "-c", PROCESS_TABLE).stdout
    rows = [line.split(" ", 2) for line in out.splitlines() if line.count(" ") >= 2]
    # Not PID 1: with `init: true` that is docker-init, whose command line names gunicorn too.
    gunicorn = {
        int(pid): int(ppid)
        for pid, ppid, cmd in rows
        if "gunicorn" in cmd and not cmd.split(" ", 1)[0].endswith(("docker-init", "tini"))
    }
    masters = [pid for pid, ppid in gunicorn.items() if ppid not in gunicorn]
    assert len(masters) == 1, out
    return masters[0], {pid for pid, ppid in gunicorn.items() if ppid == masters[0]}


def test_killed_worker_is_replaced_and_requests_keep_succeeding(engine, stack):
    container = stack.container("prod")
    master, workers = gunicorn_workers(engine, container)
    assert workers, "no gunicorn workers found"
    victim = min(workers)
    engine.docker("exec", container, "python3", "-c", f"import os, signal; os.kill({victim}, signal.SIGKILL)")
    statuses = [http_get(stack.port, "/health")[0] for _ in range(10)]

    def replaced():
        now_master, now = gunicorn_workers(engine, container)
        return now_master == master and victim not in now and len(now) == len(workers) and now - workers

    engine.wait_for(replaced, timeout=30, what="the master to start a new worker")
    statuses += [http_get(stack.port, path, HTTPS_PROXY_HEADERS)[0] for path in ("/health", "/api/notes") * 10]
    assert set(statuses) == {200}, statuses


# ----------------------------------------------------------------------------------- 6. sustained load
def memory_bytes(engine, container: str) -> float:
    usage = engine.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container).stdout.split("/")[0].strip()
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMGT]?i?B)", usage).groups()
    scale = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    return float(number) * scale[unit]


def load(port: int, seconds: float, connections: int = 32) -> dict:
    """`connections` threads, each on its own keep-alive connection, alternating /health and /api/notes."""
    deadline = time.monotonic() + seconds

    def client(index: int) -> dict:
        counts: dict = {}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        paths = ("/health", "/api/notes") if index % 2 else ("/api/notes", "/health")
        n = 0
        while time.monotonic() < deadline:
            try:
                conn.request("GET", paths[n % 2], headers=HTTPS_PROXY_HEADERS)
                response = conn.getresponse()
                response.read()
                key = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as error:
                key = type(error).__name__
                conn.close()
            counts[key] = counts.get(key, 0) + 1
            n += 1
        conn.close()
        return counts

    total: dict = {}
    with ThreadPoolExecutor(connections) as pool:
        for counts in pool.map(client, range(connections)):
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
    return total


# Seconds of load: the warm-up (workers and connections made), then the run whose memory must not grow.
WARM_UP_S, LOAD_S = 5, 30


@pytest.mark.slow
def test_sustained_load_has_no_errors_and_no_memory_growth(engine, stack):
    container = stack.container("prod")
    warm = load(stack.port, WARM_UP_S)
    assert set(warm) == {200}, warm
    after_warm_up = memory_bytes(engine, container)
    counts = load(stack.port, LOAD_S)
    at_end = memory_bytes(engine, container)
    assert set(counts) == {200}, f"non-2xx or errors under load: {counts}"
    assert counts[200] > 1000, counts
    assert at_end <= after_warm_up * 1.5, f"memory {after_warm_up / 2**20:.0f} MiB -> {at_end / 2**20:.0f} MiB"


# ----------------------------------------------------------------------------------- 7./8. nox -s qa
@dataclass
class Checkout:
    root: Path
    proj_name: str

    @property
    def project(self) -> str:
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]
        return f"{self.proj_name}-{digest}"

    @property
    def env(self) -> dict[str, str]:
        return {"PROJ_NAME": self.proj_name}

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """`nox ARGS` in this copy, under its default compose project (COMPOSE_PROJECT_NAME and APP_PORT unset)."""
        return start_tool("nox", *args, env=self.env, cwd=self.root, drop=("COMPOSE_PROJECT_NAME", "APP_PORT"))

    def leftovers(self, engine) -> dict[str, str]:
        label = f"label=com.docker.compose.project={self.project}-qa"
        found = {
            "containers": engine.docker("ps", "-a", "--quiet", "--filter", label).stdout.strip(),
            "named containers": engine.docker("ps", "-a", "--quiet", "--filter", f"name={self.project}").stdout.strip(),
            "networks": engine.docker("network", "ls", "--quiet", "--filter", label).stdout.strip(),
            "volumes": engine.docker("volume", "ls", "--quiet", "--filter", label).stdout.strip(),
        }
        return {kind: ids for kind, ids in found.items() if ids}

    def cleanup(self, engine) -> None:
        """Whatever the run left (a failing test says so before this runs), then the image it tagged."""
        label = f"label=com.docker.compose.project={self.project}-qa"
        ids = engine.docker("ps", "-a", "--quiet", "--filter", label).stdout.split()
        if ids:
            engine.docker("rm", "--force", "--volumes", *ids, check=False)
        for kind in ("network", "volume"):
            ids = engine.docker(kind, "ls", "--quiet", "--filter", label).stdout.split()
            if ids:
                engine.docker(kind, "rm", *ids, check=False)
        engine.docker("image", "rm", f"{self.project}:test-qa", check=False)


@contextmanager
def checkout_copy(engine, tmp_path: Path, name: str, extra_tests: Mapping[str, str] = ()) -> Iterator[Checkout]:
    target = copy_checkout(tmp_path / name)
    for relative, text in dict(extra_tests).items():
        (target / relative).write_text(text, encoding="utf-8")
    checkout = Checkout(target, unique_name("it"))
    try:
        yield checkout
    finally:
        checkout.cleanup(engine)


def junit_totals(path: Path) -> tuple[int, int]:
    """(tests, failures + errors) from pytest's JUnit XML."""
    text = path.read_text(encoding="utf-8")
    suite = re.search(r"<testsuite\b[^>]*>", text).group(0)
    value = {k: int(v) for k, v in re.findall(r'\b(tests|failures|errors)="(\d+)"', suite)}
    return value["tests"], value.get("failures", 0) + value.get("errors", 0)


FAILING_TEST = """def test_zz_fails_on_purpose():
    assert 1 + 1 == 3, "fails on purpose (integration test of nox -s qa)"
"""
SLOW_TEST = """import time


def test_zz_waits_for_an_interrupt():
    time.sleep(300)
"""
PASSING_TEST = """def test_zz_passes_on_purpose():
    assert True
"""


def test_failing_qa_test_fails_the_session_and_leaves_nothing_behind(engine, tmp_path):
    with checkout_copy(engine, tmp_path, "failing", {"tests/site/test_site_zz_fail.py": FAILING_TEST}) as checkout:
        process = checkout.popen("-s", "qa")
        output, _ = process.communicate(timeout=1200)
        assert process.returncode != 0, output[-3000:]
        reports = checkout.root / "reports"
        junit = (reports / "junit.xml").read_text(encoding="utf-8")
        assert "test_zz_fails_on_purpose" in junit and "<failure" in junit
        assert junit_totals(reports / "junit.xml")[1] >= 1
        assert (reports / "compose-logs.txt").is_file(), output[-3000:]
        assert (reports / "compose-ps.txt").is_file(), output[-3000:]
        assert "Traceback" not in last_line(output)
        assert checkout.leftovers(engine) == {}


def test_interrupted_qa_session_leaves_nothing_behind(engine, tmp_path):
    with checkout_copy(engine, tmp_path, "interrupted", {"tests/site/test_site_zz_slow.py": SLOW_TEST}) as checkout:
        process = checkout.popen("-s", "qa")
        output = interrupt_when_running(process, f"{checkout.project}-qa-pytest", "nox")
        assert process.returncode != 0, output[-3000:]
        assert checkout.leftovers(engine) == {}, output[-3000:]


@pytest.mark.slow
def test_two_checkouts_run_qa_at_the_same_time(engine, tmp_path):
    extra = {"tests/site/test_site_zz_extra.py": PASSING_TEST}
    with checkout_copy(engine, tmp_path, "one", {}) as one, checkout_copy(engine, tmp_path, "two", extra) as two:
        processes = [one.popen("-s", "qa"), two.popen("-s", "qa")]
        try:
            outputs = [p.communicate(timeout=1500)[0] for p in processes]
        finally:
            for p in processes:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
        for process, output in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output[-4000:]
        tests_one, failed_one = junit_totals(one.root / "reports" / "junit.xml")
        tests_two, failed_two = junit_totals(two.root / "reports" / "junit.xml")
        assert failed_one == failed_two == 0
        assert tests_two == tests_one + 1, (tests_one, tests_two)
        assert one.leftovers(engine) == {} and two.leftovers(engine) == {}
