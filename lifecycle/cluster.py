"""A three-node Swarm on one machine: each node a `dockerd` in its own network namespace.

Layout (all names derive from CLUSTER_NAME, so `down` needs no other state and also cleans up after a crash):

- namespace `NAME-net` holds the bridge `br0`; namespaces `NAME-m` (manager), `NAME-w1`, `NAME-w2` (workers)
  each hold one end of a veth pair (`eth0`, an address from CLUSTER_SUBNET) whose other end is a port of `br0`.
  Nothing else is connected: no host interface, no route, no default gateway, so traffic can only go
  between the namespaces the cluster created (and to each namespace's own loopback).
- each node's engine: `dockerd` started with `nsenter --net=...` (not `ip netns exec`, which remounts /sys),
  in its own UTS namespace (so `docker node ls` shows `NAME-m`, `NAME-w1`, `NAME-w2`), with its own data root,
  exec root, pid file and unix socket under CLUSTER_DIR/NAME/NODE, and cgroup parent `NAME-NODE`. Its
  iptables rules land in the node's namespace only.
- the registry (CLUSTER_REGISTRY_IMAGE) runs on the manager, published on CLUSTER_REGISTRY_PORT. A relay
  (`lifecycle.relay`) makes it `127.0.0.1:PORT` on the host and on each worker too, so an image has one
  name everywhere (`127.0.0.1:PORT/app:tag`), and every engine, the host's included, treats it as an
  insecure (plain HTTP) registry without any configuration. The host engine is never reconfigured.

Plain data and argv builders first (unit-tested as tables); `ClusterOps` sequences them through a Runner.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle import probes
from lifecycle.commands.docker import docker_argv
from lifecycle.context import Context, wait_until
from lifecycle.errors import UserError
from lifecycle.runner import Runner, spawn
from lifecycle.settings import Settings

NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
BRIDGE = "br0"
REGISTRY_CONTAINER = "registry"
REGISTRY_CONTAINER_PORT = 5000
NODE_LABEL = "lifecycle.node"  # m, w1 or w2 on each node: for placement preferences and constraints
DB_NODE = "w1"  # the node labelled DB_NODE_LABEL=true: a worker, so the app reaches the database across nodes
ROLES = (("m", "manager"), ("w1", "worker"), ("w2", "worker"))
FIRST_HOST = 11  # node addresses are the subnet's .11, .12, .13
ENGINE_DEADLINE = 60  # seconds for an engine to answer on its socket
READY_DEADLINE = 90  # seconds for every node to be Ready in the swarm
REGISTRY_DEADLINE = 60  # seconds for the registry to answer through the host's relay
STOP_DEADLINE = 30  # seconds an engine gets to stop after SIGTERM before SIGKILL
UTS_WRAPPER = 'hostname "$1" && shift && exec "$@"'  # sets the node's host name, then becomes dockerd
MARKER = ".lifecycle-cluster"  # in CLUSTER_DIR/NAME, holding NAME: `down` removes only a folder that carries it
# What `down` may signal by its command line naming the cluster's folder: an engine and what it started.
ENGINE_PROGRAMS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy", "runc")
API_TIMEOUT = 60  # seconds for one Engine API request over a node's socket


@dataclass(frozen=True)
class Node:
    name: str  # m, w1, w2: also the veth port's name in the bridge namespace
    role: str  # manager or worker
    address: str


@dataclass(frozen=True)
class Cluster:
    name: str
    subnet: ipaddress.IPv4Network
    registry_port: int
    state_dir: Path  # CLUSTER_DIR/NAME: every node's data root, exec root, socket, pid files and logs
    nodes: tuple[Node, ...]
    db_node_label: str = "lifecycle.db"  # DB_NODE_LABEL: where the deploy pins the database

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    @property
    def workers(self) -> tuple[Node, ...]:
        return self.nodes[1:]

    @property
    def bridge_netns(self) -> str:
        return f"{self.name}-net"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise UserError(f"no node {name!r} in cluster {self.name}; use one of: {', '.join(n.name for n in self.nodes)}")

    def netns(self, node: Node) -> str:
        return f"{self.name}-{node.name}"

    def netns_path(self, node: Node) -> Path:
        return NETNS_DIR / self.netns(node)

    def node_dir(self, node: Node) -> Path:
        return self.state_dir / node.name

    def socket(self, node: Node) -> Path:
        return self.node_dir(node) / "docker.sock"

    def docker_host(self, node: Node) -> str:
        return f"unix://{self.socket(node)}"

    def pidfile(self, node: Node) -> Path:
        return self.node_dir(node) / "docker.pid"

    @property
    def marker(self) -> Path:
        return self.state_dir / MARKER

    def relay_pidfile(self, node: Node | None) -> Path:
        """The relay that gives `node` (None: the host) the registry on its loopback."""
        return (self.node_dir(node) if node else self.state_dir) / "relay.pid"

    @property
    def registry(self) -> str:
        """The registry's name on the host and on every node."""
        return f"127.0.0.1:{self.registry_port}"

    @property
    def namespaces(self) -> list[str]:
        return [self.bridge_netns, *(self.netns(node) for node in self.nodes)]


NAME_RULE = re.compile(r"[a-z][a-z0-9-]{0,19}")


def plan(settings: Settings) -> Cluster:
    """The cluster the settings describe; bad values end here with the setting to fix."""
    name = settings["CLUSTER_NAME"]
    if not NAME_RULE.fullmatch(name):
        raise UserError(
            f"CLUSTER_NAME={name!r} is not usable; use 1-20 lowercase letters, digits or '-', starting with a letter"
        )
    try:
        subnet = ipaddress.IPv4Network(settings["CLUSTER_SUBNET"])
    except ValueError:
        raise UserError(
            f"CLUSTER_SUBNET={settings['CLUSTER_SUBNET']!r} is not an IPv4 network; use e.g. 198.18.7.0/24"
        ) from None
    if subnet.num_addresses < 16:
        raise UserError(f"CLUSTER_SUBNET={subnet} is too small; use a /28 or larger, e.g. 198.18.7.0/24")
    port = settings["CLUSTER_REGISTRY_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"CLUSTER_REGISTRY_PORT={port!r} is not a port number; set it to a number from 1 to 65535")
    directory = Path(settings["CLUSTER_DIR"])
    if not directory.is_absolute():
        raise UserError(f"CLUSTER_DIR={directory} must be an absolute path, e.g. /var/lib/lifecycle-cluster")
    nodes = tuple(Node(n, role, str(subnet[FIRST_HOST + i])) for i, (n, role) in enumerate(ROLES))
    return Cluster(name, subnet, int(port), directory / name, nodes, settings["DB_NODE_LABEL"])


# --------------------------------------------------------------------------------------------- decisions


def route_networks(ip_json: str) -> list[ipaddress.IPv4Network]:
    """The destinations in `ip -json -4 route show table all` output (the default route is no range in use)."""
    networks = []
    for route in json.loads(ip_json or "[]"):
        destination = route.get("dst", "default")
        if destination != "default":
            networks.append(ipaddress.IPv4Network(destination, strict=False))
    return networks


def subnet_conflicts(subnet: ipaddress.IPv4Network, used: Iterable[ipaddress.IPv4Network]) -> list[str]:
    return sorted({str(network) for network in used if network.overlaps(subnet)})


def node_readiness(node_ls_json_lines: str) -> dict[str, str]:
    """Host name -> `Ready`/`Down`/... from `docker node ls --format '{{json .}}'`."""
    rows = [json.loads(line) for line in node_ls_json_lines.splitlines() if line.strip()]
    return {row["Hostname"]: row["Status"] for row in rows}


def rollback_reason(service: str, update_status: Mapping[str, str] | None, tasks: Sequence[Mapping[str, str]]) -> str:
    """One line for a service whose last update did not complete: what happened and the first task error."""
    state = (update_status or {}).get("State", "")
    if not state or state == "completed":
        return ""
    errors = [f"on {task['Node'] or 'no node'}: {task['Error']}" for task in tasks if task.get("Error")]
    cause = errors[0] if errors else (update_status or {}).get("Message", "no task error recorded")
    if "No such image" in cause:
        cause += " (can that node pull from the registry?)"
    return f"{service}: update {state.replace('_', ' ')}: {cause}"


# ------------------------------------------------------------------------------------------ argv builders


def ip(*args: str) -> list[str]:
    return ["ip", *args]


def network_commands(cluster: Cluster) -> list[list[str]]:
    """Namespaces, the bridge and one veth pair per node, in order."""
    bridge = cluster.bridge_netns
    commands = [
        ip("netns", "add", bridge),
        ip("-n", bridge, "link", "add", BRIDGE, "type", "bridge"),
        ip("-n", bridge, "link", "set", "dev", BRIDGE, "up"),
    ]
    for node in cluster.nodes:
        ns = cluster.netns(node)
        commands += [
            ip("netns", "add", ns),
            ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", node.name, "netns", bridge),
            ip("-n", bridge, "link", "set", "dev", node.name, "master", BRIDGE, "up"),
            ip("-n", ns, "address", "add", f"{node.address}/{cluster.subnet.prefixlen}", "dev", "eth0"),
            ip("-n", ns, "link", "set", "dev", "eth0", "up"),
            ip("-n", ns, "link", "set", "dev", "lo", "up"),
        ]
    return commands


def in_netns(cluster: Cluster, node: Node, *argv: str) -> list[str]:
    """argv in the node's network namespace only (mounts and /sys stay the host's, which dockerd needs)."""
    return ["nsenter", f"--net={cluster.netns_path(node)}", *argv]


def dockerd(cluster: Cluster, node: Node) -> list[str]:
    here = cluster.node_dir(node)
    return in_netns(
        cluster,
        node,
        "unshare",
        "--uts",
        "--",
        "sh",
        "-c",
        UTS_WRAPPER,
        "sh",
        cluster.netns(node),
        "dockerd",
        "--data-root",
        str(here / "data"),
        "--exec-root",
        str(here / "exec"),
        "--pidfile",
        str(cluster.pidfile(node)),
        "--host",
        cluster.docker_host(node),
        "--cgroup-parent",
        cluster.netns(node),
    )


def docker(cluster: Cluster, node: Node, *args: str) -> list[str]:
    """The docker CLI against one node's engine."""
    return ["docker", "--host", cluster.docker_host(node), *args]


def swarm_init(cluster: Cluster) -> list[str]:
    manager = cluster.manager
    return docker(
        cluster,
        manager,
        "swarm",
        "init",
        "--advertise-addr",
        manager.address,
        "--listen-addr",
        f"{manager.address}:2377",
    )


JOIN_PATH = "/swarm/join"


def swarm_join_body(cluster: Cluster, node: Node, token: str) -> dict[str, object]:
    """The Engine API's POST /swarm/join body: the token travels in it, never on a command line (`ps`)."""
    return {
        "ListenAddr": f"{node.address}:2377",
        "AdvertiseAddr": node.address,
        "RemoteAddrs": [f"{cluster.manager.address}:2377"],
        "JoinToken": token,
    }


def shown_request(cluster: Cluster, node: Node, path: str, body: Mapping[str, object]) -> str:
    """The API call as printed: the join token is never shown."""
    redacted = {key: ("<hidden>" if key == "JoinToken" else value) for key, value in body.items()}
    return f"+ POST {path} on {cluster.socket(node)} {json.dumps(redacted)}"


def node_labels(cluster: Cluster) -> list[list[str]]:
    """Every node named by a label; the database's node marked as the deploy expects."""
    commands = []
    for node in cluster.nodes:
        db = ["--label-add", f"{cluster.db_node_label}=true"] * (node.name == DB_NODE)
        labels = ["--label-add", f"{NODE_LABEL}={node.name}", *db]
        commands.append(docker(cluster, cluster.manager, "node", "update", *labels, cluster.netns(node)))
    return commands


def registry_run(cluster: Cluster, image: str) -> list[str]:
    published = f"{cluster.registry_port}:{REGISTRY_CONTAINER_PORT}"
    return docker(
        cluster, cluster.manager, "run", "--detach", "--name", REGISTRY_CONTAINER, "--restart", "always",
        "--publish", published, image,
    )  # fmt: skip


def relay(cluster: Cluster, node: Node | None) -> list[str]:
    """The registry on `node`'s loopback (None: the host's), relayed over the bridge to the manager."""
    relay_module = [sys.executable, "-m", "lifecycle.relay", "--listen", cluster.registry]
    if node is None:  # listens on the host, connects from inside the manager's namespace
        return [
            *relay_module,
            "--connect",
            cluster.registry,
            "--connect-netns",
            str(cluster.netns_path(cluster.manager)),
        ]
    return in_netns(cluster, node, *relay_module, "--connect", f"{cluster.manager.address}:{cluster.registry_port}")


# ----------------------------------------------------------------------------------------------- processes


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_cmdline(pid: int) -> list[str]:
    """The process's argv ([] when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]] if raw.endswith(b"\0") else []


def has_run(argv: Sequence[str], run: Sequence[str]) -> bool:
    """`run` appears in argv as consecutive arguments."""
    return any(list(argv[i : i + len(run)]) == list(run) for i in range(len(argv) - len(run) + 1))


def is_engine_of(argv: Sequence[str], pidfile: Path) -> bool:
    """A pid file's pid is ours to signal only while it is the dockerd that writes that very pid file
    (a pid file outlives a reboot; its number may since belong to anything)."""
    return bool(argv) and Path(argv[0]).name == "dockerd" and has_run(argv, ["--pidfile", str(pidfile)])


def names_folder(argv: Sequence[str], folder: Path) -> bool:
    """An engine program whose arguments name a path inside `folder` (`folder/...`, not `folder2/...`)."""
    inside = str(folder).rstrip("/") + "/"
    return (
        bool(argv)
        and Path(argv[0]).name in ENGINE_PROGRAMS
        and any(arg == inside[:-1] or inside in arg for arg in argv[1:])
    )


def cluster_dir_problem(path: Path, uid: int, mode: int) -> str:
    """Why CLUSTER_DIR cannot hold a cluster whose folder root removes ("" when it can): another user could
    put or swap a folder there."""
    if uid != 0:
        return f"CLUSTER_DIR={path} is owned by uid {uid}, not root"
    if mode & stat.S_IWOTH:
        return f"CLUSTER_DIR={path} is writable by every user (mode {stat.S_IMODE(mode):o})"
    return ""


def marker_problem(cluster: Cluster, is_dir: bool, is_link: bool, marker_text: str | None) -> str:
    """Why CLUSTER_DIR/NAME is not a folder `cluster.up` made for this cluster ("" when it is)."""
    if is_link:
        return f"{cluster.state_dir} is a symbolic link"
    if not is_dir:
        return f"{cluster.state_dir} is not a folder"
    if marker_text is None:
        return f"{cluster.state_dir} has no {MARKER} file"
    if marker_text.strip() != cluster.name:
        return f"{cluster.state_dir}/{MARKER} names cluster {marker_text.strip()[:20]!r}, not {cluster.name!r}"
    return ""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (gone, only not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return pid > 0 and state != "Z"


def stop_process(pid: int, deadline: float) -> None:
    """SIGTERM, then SIGKILL once `deadline` seconds have passed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_until(lambda: not alive(pid), deadline, 0.2, None):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def processes_using(path: Path) -> list[int]:
    """Engine processes whose command line names a path inside `path`: a killed engine's containerd and shims."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if pid != os.getpid() and names_folder(read_cmdline(pid), path)]


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory under the engine's cgroup parent, deepest first."""
    found = [path for tree in CGROUP_ROOT.glob(f"*/{parent}") for path in [tree, *tree.rglob("*")] if path.is_dir()]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def empty_cgroups(parent: str) -> None:
    """Stop what is left in the engine's cgroups (containers of a killed engine), then remove them."""
    for directory in cgroup_dirs(parent):
        procs = directory / "cgroup.procs"
        for pid in procs.read_text().split() if procs.exists() else ():
            stop_process(int(pid), 5)
        with contextlib.suppress(OSError):
            directory.rmdir()


def mounts_under(path: Path, mountinfo: str) -> list[str]:
    """Mount points below `path` in /proc/self/mountinfo text, deepest first (a killed engine leaves them)."""
    prefix = str(path).rstrip("/") + "/"
    points = {line.split()[4] for line in mountinfo.splitlines() if len(line.split()) > 4}
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


# ---------------------------------------------------------------------------------------------- operations


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a node engine's unix socket (the Engine API), standard library only."""

    def __init__(self, path: Path, timeout: float = API_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def engine_post(socket_path: Path, path: str, body: Mapping[str, object]) -> tuple[int, str]:
    """POST a JSON body to the Engine API on a unix socket: (HTTP status, the answer's text)."""
    connection = UnixHTTPConnection(socket_path)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def api_error(answer: str) -> str:
    """The Engine API's `{"message": ...}` as one line."""
    try:
        message = json.loads(answer).get("message", answer)
    except (ValueError, AttributeError):
        message = answer
    return " ".join(str(message).split())[:300]


def timed_out(what: str, deadline: float) -> str:
    return f"{what} did not happen within {deadline:.0f}s; see the logs in the cluster's folder"


@dataclass
class ClusterOps:
    cluster: Cluster
    ctx: Context

    @property
    def run(self) -> Runner:
        return self.ctx.run

    @property
    def dry(self) -> bool:
        return self.ctx.dry

    def say(self, message: str) -> None:
        self.ctx.say(message)

    def wait_until(self, probe: Callable[[], bool], deadline: float, what: str) -> float:
        """Seconds until probe() held; a UserError naming `what` after `deadline` seconds."""
        start = self.ctx.clock.now()
        self.ctx.wait_until(probe, deadline, 1.0, timed_out(what, deadline))
        return self.ctx.clock.now() - start

    def output(self, argv: list[str]) -> str | None:
        return probes.output(self.run, argv)

    def exists(self) -> bool:
        return any((NETNS_DIR / ns).exists() for ns in self.cluster.namespaces) or self.cluster.state_dir.exists()

    def check_cluster_dir(self) -> None:
        """CLUSTER_DIR is root's alone (or not made yet): nobody else can plant the folder root removes."""
        parent = self.cluster.state_dir.parent
        try:
            facts = parent.stat()
        except FileNotFoundError:
            return
        problem = cluster_dir_problem(parent, facts.st_uid, facts.st_mode)
        if problem:
            raise UserError(f"{problem}; use a folder only root can write, e.g. /var/lib/lifecycle-cluster")

    def foreign_folder(self) -> str:
        """Why CLUSTER_DIR/NAME, if it exists, is not this cluster's own ("" when it is ours or absent)."""
        folder = self.cluster.state_dir
        if not folder.exists() and not folder.is_symlink():
            return ""
        try:
            marker_text: str | None = self.cluster.marker.read_text(encoding="utf-8", errors="replace")
        except OSError:
            marker_text = None
        return marker_problem(self.cluster, folder.is_dir(), folder.is_symlink(), marker_text)

    def engine_pid(self, node: Node) -> int | None:
        """The node's engine pid, only while that pid is the dockerd writing this node's pid file."""
        pid = read_pid(self.cluster.pidfile(node))
        return pid if pid and pid > 0 and is_engine_of(read_cmdline(pid), self.cluster.pidfile(node)) else None

    def relay_pid(self, node: Node | None) -> int | None:
        """A relay's pid, only while that pid runs this cluster's relay for `node` (None: the host's)."""
        pid = read_pid(self.cluster.relay_pidfile(node))
        wanted = relay(self.cluster, node)
        wanted = wanted[wanted.index(sys.executable) + 1 :]  # `-m lifecycle.relay ...`: any python runs it
        return pid if pid and pid > 0 and has_run(read_cmdline(pid), wanted) else None

    # ---------------------------------------------------------------------------------------------- up
    def check_host(self, registry_image: str) -> None:
        """Refuse, before changing anything, what would fail halfway or touch something not ours."""
        cluster = self.cluster
        if os.geteuid() != 0:
            raise UserError("the cluster needs root (network namespaces and engines); run it as root")
        self.check_cluster_dir()
        if self.exists():
            raise UserError(f"cluster {cluster.name} is already up (or left over); run invoke cluster.down first")
        conflicts = subnet_conflicts(
            cluster.subnet, route_networks(self.output(ip("-json", "-4", "route", "show", "table", "all")) or "[]")
        )
        if conflicts:
            raise UserError(
                f"CLUSTER_SUBNET={cluster.subnet} overlaps {', '.join(conflicts)} on this host; "
                "pick a range used nowhere else"
            )
        if not probes.port_is_free(cluster.registry_port):
            raise UserError(f"127.0.0.1:{cluster.registry_port} (CLUSTER_REGISTRY_PORT) is in use; set another port")
        if not probes.image_present(self.run, registry_image):
            raise UserError(
                f"registry image {registry_image} is not in the host engine; build it (invoke images.offline) "
                "or set CLUSTER_REGISTRY_IMAGE to one that is"
            )

    def start_engine(self, node: Node) -> float:
        """Start one node's engine (again); seconds until it answers on its socket."""
        here = self.cluster.node_dir(node)
        if not self.dry:
            here.mkdir(parents=True, exist_ok=True)
        spawn(dockerd(self.cluster, node), here / "dockerd.log", dry=self.dry)
        if self.dry:
            return 0.0
        return self.wait_until(
            lambda: self.output(docker(self.cluster, node, "version", "--format", "{{.Server.Version}}")) is not None,
            ENGINE_DEADLINE,
            f"the engine of node {node.name} answering",
        )

    def engine_running(self, node: Node) -> bool:
        pid = self.engine_pid(node)
        return bool(pid) and alive(pid)

    def stop_engine(self, node: Node) -> None:
        pid = self.engine_pid(node)
        if pid and not self.dry:
            self.say(f"stop the engine of {node.name} (pid {pid}, SIGKILL after {STOP_DEADLINE}s)")
            stop_process(pid, STOP_DEADLINE)

    def start_relay(self, node: Node | None) -> None:
        pidfile = self.cluster.relay_pidfile(node)
        log = pidfile.with_suffix(".log")
        pid = spawn(relay(self.cluster, node), log, cwd=Path(__file__).resolve().parent.parent, dry=self.dry)
        if pid:
            pidfile.write_text(f"{pid}\n")

    def nodes_ready(self) -> dict[str, str]:
        listing = self.output(docker(self.cluster, self.cluster.manager, "node", "ls", "--format", "{{json .}}"))
        return node_readiness(listing or "")

    def all_ready(self) -> bool:
        states = self.nodes_ready()
        return len(states) == len(self.cluster.nodes) and set(states.values()) == {"Ready"}

    def up(self, registry_image: str) -> dict[str, float]:
        """Build the whole cluster; any failure or Ctrl-C tears down what was made. Returns timings (s)."""
        self.check_host(registry_image)
        started = time.monotonic()
        try:
            timings = self._up(registry_image)
        except BaseException:
            self.say(f"cluster {self.cluster.name}: failed or interrupted; tearing down what was made")
            self.down()
            raise
        timings["total"] = time.monotonic() - started
        return timings

    def join(self, node: Node, token: str) -> None:
        """Join `node` to the swarm through its Engine API: the token never appears in argv or output."""
        body = swarm_join_body(self.cluster, node, token)
        self.say(shown_request(self.cluster, node, JOIN_PATH, body))
        if self.dry:
            return
        status, answer = engine_post(self.cluster.socket(node), JOIN_PATH, body)
        if status != 200:
            raise UserError(f"node {node.name} could not join the swarm (HTTP {status}): {api_error(answer)}")

    def _up(self, registry_image: str) -> dict[str, float]:
        cluster, manager = self.cluster, self.cluster.manager
        if not self.dry:  # first: whatever fails later, `down` knows the folder as this cluster's own
            cluster.state_dir.mkdir(parents=True)
            cluster.marker.write_text(f"{cluster.name}\n", encoding="utf-8")
        for argv in network_commands(cluster):
            self.run(argv)
        started = time.monotonic()
        for node in cluster.nodes:
            self.start_engine(node)
        timings = {"engines": time.monotonic() - started}
        started = time.monotonic()
        self.run(swarm_init(cluster), capture=True)
        token = (self.output(docker(cluster, manager, "swarm", "join-token", "--quiet", "worker")) or "").strip()
        for node in cluster.workers:
            self.join(node, token)
        for argv in node_labels(cluster):
            self.run(argv, capture=True)
        if not self.dry:
            self.wait_until(self.all_ready, READY_DEADLINE, "every node Ready in the swarm")
        timings["swarm"] = time.monotonic() - started
        started = time.monotonic()
        archive = cluster.state_dir / "registry-image.tar"
        self.run(docker_argv("save", "--output", str(archive), registry_image))
        self.run(docker(cluster, manager, "load", "--quiet", "--input", str(archive)))
        if not self.dry:
            archive.unlink()
        self.run(registry_run(cluster, registry_image))
        for node in (None, *cluster.workers):
            self.start_relay(node)
        if not self.dry:
            self.wait_until(
                lambda: probes.registry_answers(cluster.registry),
                REGISTRY_DEADLINE,
                f"the registry answering on {cluster.registry}",
            )
        timings["registry"] = time.monotonic() - started
        if self.dry:
            self.say(f"dry run: cluster {cluster.name} was not made; the commands above are what up runs")
            return timings
        self.say(
            f"cluster {cluster.name} is up: 1 manager, {len(cluster.workers)} workers, registry {cluster.registry}\n"
            f"  export DOCKER_HOST={cluster.docker_host(manager)}\n"
            f"  push images as {cluster.registry}/NAME:TAG; invoke cluster.down removes everything"
        )
        return timings

    # -------------------------------------------------------------------------------------------- down
    def down(self) -> None:
        """Stop and remove everything the cluster made; safe to run twice and after a crash. Removes a folder only
        when it carries the marker `up` wrote, and signals a process only when its command line shows it is this
        cluster's; refuses (one line, nothing changed) a CLUSTER_DIR another user could write to."""
        cluster = self.cluster
        self.check_cluster_dir()
        foreign = self.foreign_folder()
        if foreign:
            raise UserError(f"{foreign}: not made by invoke cluster.up for {cluster.name}; nothing was removed")
        if self.dry:
            self.say(f"dry run: would stop the engines and relays of {cluster.name} and remove {cluster.namespaces}")
            return
        ours = cluster.state_dir.is_dir()  # and carries the marker (checked above): a cluster `up` made
        if ours:
            self.stop_processes()
        for namespace in cluster.namespaces:
            if (NETNS_DIR / namespace).exists():
                self.run(ip("netns", "delete", namespace), warn=True)
        if ours:
            for point in mounts_under(cluster.state_dir, Path("/proc/self/mountinfo").read_text()):
                self.run(["umount", "--lazy", point], warn=True)
            self.run(["rm", "-rf", "--one-file-system", str(cluster.state_dir)])
        self.say(f"cluster {cluster.name} is down: engines stopped, namespaces and {cluster.state_dir} removed")

    def stop_processes(self) -> None:
        """Relays and engines by their pid files (each checked to be what it should be), then what a killed engine
        left: its containerd and shims, and the containers in its cgroups."""
        cluster = self.cluster
        for node in (*cluster.nodes, None):
            pid = self.relay_pid(node)
            if pid:
                stop_process(pid, 5)
        for node in cluster.nodes:
            self.stop_engine(node)
        for pid in processes_using(cluster.state_dir):
            stop_process(pid, 5)
        for node in cluster.nodes:
            empty_cgroups(cluster.netns(node))

    # ------------------------------------------------------------------------------------------ status
    def status(self) -> list[str]:
        """Nodes, then one line per service whose last update did not complete (with the reason)."""
        cluster = self.cluster
        if not self.exists():
            return [f"cluster {cluster.name} is down"]
        lines = [
            f"cluster {cluster.name}: DOCKER_HOST={cluster.docker_host(cluster.manager)}, registry {cluster.registry}"
        ]
        states = self.nodes_ready()
        if not states:
            return [*lines, "  the manager's engine does not answer; start over: invoke cluster.down, then cluster.up"]
        lines += [f"  {host}: {state}" for host, state in sorted(states.items())]
        services = (
            self.output(docker(cluster, cluster.manager, "service", "ls", "--format", "{{.Name}}")) or ""
        ).split()
        for service in services:
            reason = self.update_problem(service)
            if reason:
                lines.append(f"  {reason}")
        return lines

    def update_problem(self, service: str) -> str:
        manager = self.cluster.manager
        status = self.output(
            docker(self.cluster, manager, "service", "inspect", "--format", "{{json .UpdateStatus}}", service)
        )
        tasks = self.output(
            docker(self.cluster, manager, "service", "ps", "--no-trunc", "--format", "{{json .}}", service)
        )
        parsed_tasks = [json.loads(line) for line in (tasks or "").splitlines() if line.strip()]
        return rollback_reason(service, json.loads(status or "null"), parsed_tasks)
