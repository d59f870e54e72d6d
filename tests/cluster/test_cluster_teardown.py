"""The cluster never outlives its command: bad input changes nothing, and Ctrl-C during `invoke cluster.up`
removes every engine, namespace, cgroup, mount and data root it had made. The host engine is left as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

from conftest import CHECKOUT, PYTHON, free_port, invoke, wait_for

from lifecycle import cluster as core
from lifecycle.settings import load_settings


def leftovers(cluster: core.Cluster) -> list[str]:
    """Whatever of this cluster still exists on the machine."""
    found = [f"netns {ns}" for ns in cluster.namespaces if (core.NETNS_DIR / ns).exists()]
    found += [f"dir {cluster.state_dir}"] * cluster.state_dir.exists()
    found += [f"pid {pid}" for pid in core.processes_using(cluster.state_dir)]
    found += [f"cgroup {d}" for node in cluster.nodes for d in core.cgroup_dirs(cluster.netns(node))]
    found += [f"mount {m}" for m in core.mounts_under(cluster.state_dir, Path("/proc/self/mountinfo").read_text())]
    return found


def host_engine() -> str:
    done = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.DockerRootDir}} {{json .RegistryConfig}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def environment(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CLUSTER_NAME": f"ct{uuid.uuid4().hex[:6]}",
        "CLUSTER_REGISTRY_PORT": str(free_port()),
        **extra,
    }


def test_a_subnet_the_host_uses_is_refused_in_one_line_and_nothing_is_made():
    routes = subprocess.run(["ip", "-json", "-4", "route"], capture_output=True, text=True, check=True).stdout
    used = next(network for network in core.route_networks(routes) if network.prefixlen <= 28)
    taken = next(used.subnets(new_prefix=28))
    env = environment(CLUSTER_SUBNET=str(taken))
    cluster = core.plan(load_settings(environ=env))
    done = invoke("cluster.up", env)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: CLUSTER_SUBNET={taken} overlaps {used}")
    assert line.endswith("on this host; pick a range used nowhere else")
    assert leftovers(cluster) == []


def test_ctrl_c_during_up_removes_everything_it_made():
    env = environment()
    cluster = core.plan(load_settings(environ=env))
    before = host_engine()
    # Ctrl-C as at a terminal: SIGINT handled as by default, also when this run itself was started in the
    # background of a non-interactive shell, which makes its children ignore SIGINT.
    up = subprocess.Popen(
        [PYTHON, "-m", "invoke", "cluster.up"], cwd=CHECKOUT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        wait_for(lambda: cluster.socket(cluster.node("w1")).exists(), 120, "the second engine's socket")
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=180)
        assert up.returncode != 0, output
        assert "tearing down what was made" in output
        assert leftovers(cluster) == [], output
        assert host_engine() == before
    finally:
        if up.poll() is None:
            up.kill()
        invoke("cluster.down", env)
