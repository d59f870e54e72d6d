"""The one place that builds the on-machine cluster's command lines: `ip` (namespaces, the bridge, veth pairs),
`nsenter`/`unshare` (an engine in a node's namespace), the docker CLI against one node's engine, and the relay.

Every builder returns an argument list for the cluster `lifecycle.cluster_layout.plan` made; nothing here runs
anything (lifecycle/cluster.py sequences them).
"""

from __future__ import annotations

import sys

from lifecycle.cluster_layout import DB_NODE, NODE_LABEL, REGISTRY_CONTAINER, REGISTRY_CONTAINER_PORT, Cluster, Node

BRIDGE = "br0"
UTS_WRAPPER = 'hostname "$1" && shift && exec "$@"'  # sets the node's host name, then becomes dockerd


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


def umount_lazy(point: str) -> list[str]:
    """Detach a mount point a killed engine left, even while something still uses it."""
    return ["umount", "--lazy", point]


def remove_tree(path: str) -> list[str]:
    """Remove a folder and everything in it, never crossing into another file system (a mount left inside)."""
    return ["rm", "-rf", "--one-file-system", path]
