"""The on-machine cluster under test (tests/cluster): running its tasks, reaching its nodes, creating services on it,
and recording numbers for `nox -s bench`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from lifecycle import cluster as core
from lifecycle import cluster_layout as layout
from lifecycle.commands import netns
from tests.helpers import CHECKOUT
from tests.helpers.engine import wait_for
from tests.helpers.tools import PYTHON_FOR_TASKS

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


def invoke(task: str, env: dict[str, str], timeout: float = TASK_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON_FOR_TASKS, "-m", "invoke", task],
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
