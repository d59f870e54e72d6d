"""The cluster never outlives its command: bad input changes nothing, and Ctrl-C during `invoke cluster.up`
removes every engine, namespace, cgroup, mount and data root it had made. The host engine is left as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

from lifecycle import cluster_layout as layout
from lifecycle import hostprocess
from lifecycle.settings import load_settings
from tests.helpers import CHECKOUT
from tests.helpers.cluster import invoke
from tests.helpers.engine import free_port, wait_for
from tests.helpers.tools import PYTHON_FOR_TASKS


def leftovers(cluster: layout.Cluster) -> list[str]:
    """Whatever of this cluster still exists on the machine."""
    found = [f"netns {ns}" for ns in cluster.namespaces if (layout.NETNS_DIR / ns).exists()]
    found += [f"dir {cluster.state_dir}"] * cluster.state_dir.exists()
    found += [f"pid {pid}" for pid in hostprocess.processes_using(cluster.state_dir)]
    found += [f"cgroup {d}" for node in cluster.nodes for d in hostprocess.cgroup_dirs(cluster.netns(node))]
    mountinfo = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {m}" for m in hostprocess.mounts_under(cluster.state_dir, mountinfo)]
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
    used = next(network for network in layout.route_networks(routes) if network.prefixlen <= 28)
    taken = next(used.subnets(new_prefix=28))
    env = environment(CLUSTER_SUBNET=str(taken))
    cluster = layout.plan(load_settings(environ=env))
    done = invoke("cluster.up", env)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: CLUSTER_SUBNET={taken} overlaps {used}")
    assert line.endswith("on this host; pick a range used nowhere else")
    assert leftovers(cluster) == []


def test_ctrl_c_during_up_removes_everything_it_made():
    env = environment()
    cluster = layout.plan(load_settings(environ=env))
    before = host_engine()
    # Ctrl-C as at a terminal: SIGINT handled as by default, also when this run itself was started in the
    # background of a non-interactive shell, which makes its children ignore SIGINT.
    up = subprocess.Popen(
        [PYTHON_FOR_TASKS, "-m", "invoke", "cluster.up"], cwd=CHECKOUT, env=env, stdin=subprocess.DEVNULL,
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


def test_down_with_no_cluster_removes_nothing_and_refuses_a_folder_others_can_write(tmp_path):
    """A folder CLUSTER_DIR/NAME that `cluster.up` did not make survives `cluster.down` (as `/` and `home` would),
    and a CLUSTER_DIR owned by another user or writable by everyone is refused: one line each, nothing changed."""
    clusters = tmp_path / "clusters"
    decoy = clusters / "decoy"
    (decoy / "m").mkdir(parents=True)
    (decoy / "m" / "docker.pid").write_text(f"{os.getpid()}\n")  # a pid file naming a process not an engine
    (decoy / "keep.txt").write_text("user data\n")
    before = sorted(str(p.relative_to(clusters)) for p in clusters.rglob("*"))
    outputs = {}
    for case, prepare in [
        ("no marker", lambda: clusters.chmod(0o755)),
        ("other cluster's marker", lambda: (decoy / layout.MARKER).write_text("decoy2\n")),
        ("world-writable", lambda: clusters.chmod(0o1777)),
        ("not root's", lambda: (clusters.chmod(0o755), os.chown(clusters, 65534, 65534))),
    ]:
        prepare()
        done = invoke("cluster.down", environment(CLUSTER_DIR=str(clusters), CLUSTER_NAME="decoy"))
        outputs[case] = done.stderr.strip()
        assert done.returncode == 1, (case, done.stdout, done.stderr)
        assert len(outputs[case].splitlines()) == 1, (case, done.stderr)
        assert (decoy / "keep.txt").read_text() == "user data\n"
    after = sorted(str(p.relative_to(clusters)) for p in clusters.rglob("*"))
    assert after == sorted([*before, "decoy/.lifecycle-cluster"])
    assert (
        "has no .lifecycle-cluster file: not made by invoke cluster.up for decoy; nothing was removed"
        in outputs["no marker"]
    )
    assert "names cluster 'decoy2', not 'decoy'" in outputs["other cluster's marker"]
    assert f"CLUSTER_DIR={clusters} is writable by every user (mode 1777)" in outputs["world-writable"]
    assert f"CLUSTER_DIR={clusters} is owned by uid 65534, not root" in outputs["not root's"]
