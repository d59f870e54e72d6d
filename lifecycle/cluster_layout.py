"""What an on-machine cluster is: its nodes, names, addresses and folders, planned from the settings; and how the
engines' answers about it read. Plain data and decisions, no commands (those: lifecycle/commands/netns.py), no
processes (lifecycle/hostprocess.py), no sequencing (lifecycle/cluster.py).
"""

from __future__ import annotations

import ipaddress
import json
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UserError
from lifecycle.settings import Settings

NETNS_DIR = Path("/var/run/netns")
REGISTRY_CONTAINER = "registry"
REGISTRY_CONTAINER_PORT = 5000
NODE_LABEL = "lifecycle.node"  # m, w1 or w2 on each node: for placement preferences and constraints
DB_NODE = "w1"  # the node labelled DB_NODE_LABEL=true: a worker, so the app reaches the database across nodes
ROLES = (("m", "manager"), ("w1", "worker"), ("w2", "worker"))
FIRST_HOST = 11  # node addresses are the subnet's .11, .12, .13
MARKER = ".lifecycle-cluster"  # in CLUSTER_DIR/NAME, holding NAME: `down` removes only a folder that carries it
JOIN_PATH = "/swarm/join"


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


def plan(settings: Settings) -> Cluster:
    """The cluster the settings describe (their values were checked at load: lifecycle/setting_kinds.py)."""
    name, subnet = settings["CLUSTER_NAME"], settings.typed("CLUSTER_SUBNET")
    nodes = tuple(Node(n, role, str(subnet[FIRST_HOST + i])) for i, (n, role) in enumerate(ROLES))
    directory = settings.typed("CLUSTER_DIR")
    return Cluster(
        name, subnet, settings.typed("CLUSTER_REGISTRY_PORT"), directory / name, nodes, settings["DB_NODE_LABEL"]
    )


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
