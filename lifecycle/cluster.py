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

What the cluster is: lifecycle/cluster_layout.py; its commands: lifecycle/commands/netns.py; processes and cgroups:
lifecycle/hostprocess.py. `ClusterOps` sequences them over a `Context`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifecycle import probes
from lifecycle.cluster_layout import (
    JOIN_PATH,
    NETNS_DIR,
    Cluster,
    Node,
    cluster_dir_problem,
    marker_problem,
    node_readiness,
    rollback_reason,
    route_networks,
    shown_request,
    subnet_conflicts,
    swarm_join_body,
)
from lifecycle.commands.docker import docker_argv
from lifecycle.commands.netns import (
    docker,
    dockerd,
    ip,
    network_commands,
    node_labels,
    registry_run,
    relay,
    remove_tree,
    swarm_init,
    umount_lazy,
)
from lifecycle.context import Context, UsesContext
from lifecycle.errors import UserError
from lifecycle.hostprocess import (
    alive,
    api_error,
    empty_cgroups,
    engine_post,
    has_run,
    is_engine_of,
    mounts_under,
    processes_using,
    read_cmdline,
    read_pid,
    stop_process,
)
from lifecycle.runner import spawn

ENGINE_DEADLINE = 60  # seconds for an engine to answer on its socket
READY_DEADLINE = 90  # seconds for every node to be Ready in the swarm
REGISTRY_DEADLINE = 60  # seconds for the registry to answer through the host's relay
STOP_DEADLINE = 30  # seconds an engine gets to stop after SIGTERM before SIGKILL


def timed_out(what: str, deadline: float) -> str:
    return f"{what} did not happen within {deadline:.0f}s; see the logs in the cluster's folder"


@dataclass
class ClusterOps(UsesContext):
    cluster: Cluster
    ctx: Context

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
                self.run(umount_lazy(point), warn=True)
            self.run(remove_tree(str(cluster.state_dir)))
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
