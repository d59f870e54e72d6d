"""The cluster under test: three engines in network namespaces, brought up once through the real CLI
(`invoke cluster.up`) under a unique name and registry port, and always brought down (`invoke cluster.down`).

Images reach the nodes only through the cluster's registry: `app_images` builds two tiny HTTP images on the host
engine, pushes them to 127.0.0.1:PORT and removes the host's tags again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))

from lifecycle import cluster as core  # noqa: E402 - needs the checkout on sys.path first
from lifecycle import cluster_layout as layout  # noqa: E402
from lifecycle.commands import netns  # noqa: E402
from lifecycle.context import Context  # noqa: E402
from lifecycle.runner import SubprocessRunner  # noqa: E402
from lifecycle.settings import load_settings  # noqa: E402

# The engine tests' helpers (wait_for, free_port), loaded by path: both folders' helpers are named conftest.
_spec = importlib.util.spec_from_file_location(
    "integration_helpers", CHECKOUT / "tests" / "integration" / "conftest.py"
)
integration_helpers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = integration_helpers  # dataclasses look their module up there
_spec.loader.exec_module(integration_helpers)
wait_for = integration_helpers.wait_for
free_port = integration_helpers.free_port
PYTHON = os.environ.get("PYTHON_FOR_TASKS", sys.executable)
TASK_TIMEOUT = 300
APP_PORT = 8000  # inside the app containers
# The app: answers /id with its container's host name, so a client can tell replicas apart.
APP_COMMAND = (
    "import http.server, socket\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = socket.gethostname().encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *args): pass\n"
    f"http.server.ThreadingHTTPServer(('', {APP_PORT}), H).serve_forever()\n"
)
REPORT = CHECKOUT / "reports" / "cluster.json"
pytest_configure = integration_helpers.pytest_configure  # SIGTERM runs the fixtures' clean-up, as Ctrl-C does


def invoke(task: str, env: dict[str, str], timeout: float = TASK_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "invoke", task],
        cwd=CHECKOUT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def record(**numbers: float) -> None:
    """Numbers for `nox -s bench` (reports/cluster.json), merged with those of earlier tests in this run."""
    REPORT.parent.mkdir(exist_ok=True)
    current = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    REPORT.write_text(json.dumps({**current, **numbers}, indent=2) + "\n")


@dataclass
class ClusterUnderTest:
    ops: core.ClusterOps
    env: dict[str, str]

    @property
    def cluster(self) -> layout.Cluster:
        return self.ops.cluster

    def docker(self, node: str, *args: str, check: bool = True, timeout: float = 120) -> str:
        argv = netns.docker(self.cluster, self.cluster.node(node), *args)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode:
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def in_netns(self, node: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = netns.in_netns(self.cluster, self.cluster.node(node), *argv)
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def tasks(self, service: str) -> list[dict[str, str]]:
        listing = self.docker("m", "service", "ps", "--no-trunc", "--format", "{{json .}}", service)
        return [json.loads(line) for line in listing.splitlines() if line.strip()]

    def running_nodes(self, service: str) -> list[str]:
        """Host names of the nodes that run the service's tasks now, one entry per running task."""
        running = [
            t for t in self.tasks(service) if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")
        ]
        return sorted(t["Node"] for t in running)

    def hostname(self, node: str) -> str:
        return self.cluster.netns(self.cluster.node(node))


@pytest.fixture(scope="session")
def cluster_env() -> dict[str, str]:
    name = f"ct{uuid.uuid4().hex[:6]}"
    return {**os.environ, "CLUSTER_NAME": name, "CLUSTER_REGISTRY_PORT": str(free_port())}


@pytest.fixture(scope="session")
def live(cluster_env) -> Iterator[ClusterUnderTest]:
    settings = load_settings(environ=cluster_env)
    ops = core.ClusterOps(layout.plan(settings), Context(settings, SubprocessRunner(echo=False)))
    started = time.monotonic()
    try:
        done = invoke("cluster.up", cluster_env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SWMTKN" not in done.stdout + done.stderr, "a swarm join token was printed"
        assert '"JoinToken": "<hidden>"' in done.stderr  # the workers' joins were shown, without the token
        record(up_seconds=round(time.monotonic() - started, 1))
        yield ClusterUnderTest(ops, cluster_env)
    finally:
        down = invoke("cluster.down", cluster_env)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="session")
def app_images(live) -> list[str]:
    """Two versions of the app, pushed to the cluster's registry only (the host keeps no tag of them)."""
    base = load_settings().base_image
    dockerfile = f"FROM {base}\nCMD {json.dumps(['python3', '-c', APP_COMMAND])}\n"
    images = []
    for version in ("v1", "v2"):
        image = f"{live.cluster.registry}/{live.cluster.name}-app:{version}"
        build = ["docker", "build", "--quiet", "--label", f"io.lifecycle.test-version={version}", "--tag", image, "-"]
        subprocess.run(build, input=dockerfile, text=True, capture_output=True, check=True, timeout=300)
        try:
            subprocess.run(["docker", "push", "--quiet", image], capture_output=True, check=True, timeout=300)
        finally:
            subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)
        images.append(image)
    return images


def service_create(live: ClusterUnderTest, name: str, image: str, *options: str) -> None:
    """A service of the app on an overlay network of its own, DNS round robin (no IPVS needed)."""
    live.docker("m", "network", "create", "--driver", "overlay", "--attachable", f"{name}-net")
    live.docker(
        "m", "service", "create", "--quiet", "--detach", "--name", name, "--network", f"{name}-net",
        "--endpoint-mode", "dnsrr", "--placement-pref", f"spread=node.labels.{layout.NODE_LABEL}", *options, image,
    )  # fmt: skip


def service_remove(live: ClusterUnderTest, name: str) -> None:
    live.docker("m", "service", "rm", name, check=False)
    wait_for(lambda: not live.docker("m", "ps", "--quiet", "--filter", f"name={name}.", check=False).strip(), 60,
             f"{name}'s tasks gone from the manager")  # fmt: skip
    live.docker("m", "network", "rm", f"{name}-net", check=False)


def converged(live: ClusterUnderTest, service: str, replicas: int) -> Callable[[], list[str] | None]:
    def probe() -> list[str] | None:
        nodes = live.running_nodes(service)
        return nodes if len(nodes) == replicas else None

    return probe
