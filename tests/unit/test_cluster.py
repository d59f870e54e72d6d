"""lifecycle.cluster without an engine: the plan from settings, the argv builders as tables, and the decisions."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from lifecycle import cluster as core
from lifecycle import cluster_layout as layout
from lifecycle import hostprocess
from lifecycle.commands import netns
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.settings import load_settings

STATE = Path("/var/lib/lifecycle-cluster/lab")
NS = "/var/run/netns"
M = "unix:///var/lib/lifecycle-cluster/lab/m/docker.sock"


@pytest.fixture
def lab(tmp_path) -> layout.Cluster:
    return layout.plan(load_settings(root=tmp_path, environ={"CLUSTER_NAME": "lab", "CLUSTER_REGISTRY_PORT": "5050"}))


def test_plan_names_every_node_and_address(lab):
    assert [(n.name, n.role, n.address) for n in lab.nodes] == [
        ("m", "manager", "198.18.7.11"),
        ("w1", "worker", "198.18.7.12"),
        ("w2", "worker", "198.18.7.13"),
    ]
    assert lab.state_dir == STATE
    assert lab.namespaces == ["lab-net", "lab-m", "lab-w1", "lab-w2"]
    assert lab.docker_host(lab.manager) == M
    assert lab.registry == "127.0.0.1:5050"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CLUSTER_NAME": "Lab"}, "CLUSTER_NAME='Lab' is not usable"),
        ({"CLUSTER_NAME": "a" * 21}, "is not usable"),
        ({"CLUSTER_SUBNET": "198.18.7.0/29"}, "CLUSTER_SUBNET='198.18.7.0/29' is too small"),
        ({"CLUSTER_SUBNET": "10.1.2.3/24"}, "is not an IPv4 network"),
        ({"CLUSTER_SUBNET": "lab"}, "is not an IPv4 network"),
        ({"CLUSTER_REGISTRY_PORT": "http"}, "CLUSTER_REGISTRY_PORT='http' is not a port number"),
        ({"CLUSTER_REGISTRY_PORT": "70000"}, "is not a port number"),
        ({"CLUSTER_DIR": "cluster"}, "CLUSTER_DIR='cluster' must be an absolute path"),
    ],
    ids=["uppercase", "long-name", "small-subnet", "host-bits", "not-a-net", "port-word", "port-range", "relative-dir"],
)
def test_bad_settings_are_one_line_naming_the_setting(tmp_path, environ, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        layout.plan(load_settings(root=tmp_path, environ=environ))
    assert "\n" not in str(error.value)


def test_network_commands_build_the_bridge_namespace_then_one_veth_per_node(lab):
    commands = netns.network_commands(lab)
    assert commands[:3] == [
        ["ip", "netns", "add", "lab-net"],
        ["ip", "-n", "lab-net", "link", "add", "br0", "type", "bridge"],
        ["ip", "-n", "lab-net", "link", "set", "dev", "br0", "up"],
    ]
    assert commands[3:9] == [
        ["ip", "netns", "add", "lab-m"],
        ["ip", "link", "add", "eth0", "netns", "lab-m", "type", "veth", "peer", "name", "m", "netns", "lab-net"],
        ["ip", "-n", "lab-net", "link", "set", "dev", "m", "master", "br0", "up"],
        ["ip", "-n", "lab-m", "address", "add", "198.18.7.11/24", "dev", "eth0"],
        ["ip", "-n", "lab-m", "link", "set", "dev", "eth0", "up"],
        ["ip", "-n", "lab-m", "link", "set", "dev", "lo", "up"],
    ]
    assert len(commands) == 3 + 6 * 3
    assert not any("route" in argv or "default" in argv for argv in commands)  # no way out of the namespaces


def test_builders(lab):
    w1 = lab.node("w1")
    table = [
        (
            netns.dockerd(lab, w1),
            ["nsenter", f"--net={NS}/lab-w1", "unshare", "--uts", "--", "sh", "-c", netns.UTS_WRAPPER, "sh", "lab-w1",
             "dockerd", "--data-root", f"{STATE}/w1/data", "--exec-root", f"{STATE}/w1/exec",
             "--pidfile", f"{STATE}/w1/docker.pid", "--host", f"unix://{STATE}/w1/docker.sock",
             "--cgroup-parent", "lab-w1"],
        ),
        (netns.docker(lab, w1, "info"), ["docker", "--host", f"unix://{STATE}/w1/docker.sock", "info"]),
        (
            netns.swarm_init(lab),
            ["docker", "--host", M, "swarm", "init", "--advertise-addr", "198.18.7.11",
             "--listen-addr", "198.18.7.11:2377"],
        ),
        (
            netns.registry_run(lab, "lifecycle/registry:2.8"),
            ["docker", "--host", M, "run", "--detach", "--name", "registry", "--restart", "always",
             "--publish", "5050:5000", "lifecycle/registry:2.8"],
        ),
        (
            netns.relay(lab, None),
            [sys.executable, "-m", "lifecycle.relay", "--listen", "127.0.0.1:5050", "--connect", "127.0.0.1:5050",
             "--connect-netns", f"{NS}/lab-m"],
        ),
        (
            netns.relay(lab, w1),
            ["nsenter", f"--net={NS}/lab-w1", sys.executable, "-m", "lifecycle.relay", "--listen", "127.0.0.1:5050",
             "--connect", "198.18.7.11:5050"],
        ),
    ]  # fmt: skip
    for argv, expected in table:
        assert argv == expected


def test_every_node_is_labelled_and_one_worker_holds_the_database(lab):
    assert netns.node_labels(lab) == [
        ["docker", "--host", M, "node", "update", "--label-add", "lifecycle.node=m", "lab-m"],
        ["docker", "--host", M, "node", "update", "--label-add", "lifecycle.node=w1",
         "--label-add", "lifecycle.db=true", "lab-w1"],
        ["docker", "--host", M, "node", "update", "--label-add", "lifecycle.node=w2", "lab-w2"],
    ]  # fmt: skip


def test_the_database_node_carries_the_db_node_label_setting(tmp_path):
    settings = load_settings(root=tmp_path, environ={"CLUSTER_NAME": "lab", "DB_NODE_LABEL": "shop.db"})
    labels = [argv[argv.index("update") + 1 : -1] for argv in netns.node_labels(layout.plan(settings))]
    assert labels == [
        ["--label-add", "lifecycle.node=m"],
        ["--label-add", "lifecycle.node=w1", "--label-add", "shop.db=true"],
        ["--label-add", "lifecycle.node=w2"],
    ]


def test_unknown_node_names_the_nodes(lab):
    with pytest.raises(UserError, match="no node 'w3' in cluster lab; use one of: m, w1, w2"):
        lab.node("w3")


ROUTES = '[{"dst":"default","gateway":"192.0.2.1"},{"dst":"172.17.0.0/16"},{"dst":"192.0.2.2","type":"local"}]'


@pytest.mark.parametrize(
    ("subnet", "conflicts"),
    [("198.18.7.0/24", []), ("172.17.3.0/24", ["172.17.0.0/16"]), ("192.0.2.0/24", ["192.0.2.2/32"])],
)
def test_a_subnet_the_host_uses_is_a_conflict_and_the_default_route_is_not(subnet, conflicts):
    networks = layout.route_networks(ROUTES)
    assert layout.subnet_conflicts(ipaddress.IPv4Network(subnet), networks) == conflicts


def test_node_readiness_reads_node_ls_json():
    lines = '{"Hostname":"lab-m","Status":"Ready"}\n{"Hostname":"lab-w2","Status":"Down"}\n'
    assert layout.node_readiness(lines) == {"lab-m": "Ready", "lab-w2": "Down"}


@pytest.mark.parametrize(
    ("status", "tasks", "line"),
    [
        (None, [], ""),
        ({"State": "completed", "Message": "update completed"}, [], ""),
        (
            {"State": "rollback_completed", "Message": "rollback completed"},
            [{"Node": "lab-m", "Error": ""}, {"Node": "lab-w2", "Error": '"No such image: r/app:v2@sha256:1"'}],
            'web: update rollback completed: on lab-w2: "No such image: r/app:v2@sha256:1"'
            " (can that node pull from the registry?)",
        ),
        (
            {"State": "paused", "Message": "update paused due to failure"},
            [{"Node": "", "Error": "task: non-zero exit (1)"}],
            "web: update paused: on no node: task: non-zero exit (1)",
        ),
        (
            {"State": "rollback_paused", "Message": "rollback paused"},
            [],
            "web: update rollback paused: rollback paused",
        ),
    ],
    ids=["never-updated", "completed", "rolled-back-pull", "paused-exit", "no-task-error"],
)
def test_rollback_reason_is_one_line(status, tasks, line):
    assert layout.rollback_reason("web", status, tasks) == line


def test_mounts_under_the_state_dir_deepest_first():
    mountinfo = (
        "36 35 98:0 / / rw - ext4 /dev/root rw\n"
        f"40 36 0:50 / {STATE}/m/data/overlay2/abc/merged rw - overlay overlay rw\n"
        f"41 36 0:4 / {STATE}/m/exec/netns/1-x rw - nsfs nsfs rw\n"
        "42 36 0:4 / /var/lib/lifecycle-cluster/lab2/m rw - ext4 /dev/root rw\n"
    )
    assert hostprocess.mounts_under(STATE, mountinfo) == [
        f"{STATE}/m/data/overlay2/abc/merged",
        f"{STATE}/m/exec/netns/1-x",
    ]


def test_a_dry_run_prints_the_commands_and_makes_nothing(tmp_path, capsys, monkeypatch):
    from tests.helpers.recording import RecordingRunner

    monkeypatch.setattr(core.os, "geteuid", lambda: 0)
    monkeypatch.setattr(core.probes, "port_is_free", lambda port: True)
    environ = {"CLUSTER_NAME": "unit-dry", "CLUSTER_DIR": str(tmp_path / "clusters")}
    lab_settings = load_settings(root=tmp_path, environ=environ)
    lab = layout.plan(lab_settings)
    runner = RecordingRunner()
    ops = core.ClusterOps(lab, Context(lab_settings, runner, dry=True))
    ops.up("lifecycle/registry:2.8")
    made = [argv for argv in runner.calls if argv[:2] != ["ip", "-json"] and "inspect" not in argv]
    assert made[: len(netns.network_commands(lab))] == netns.network_commands(lab)
    assert netns.swarm_init(lab) in made and netns.registry_run(lab, "lifecycle/registry:2.8") in made
    assert not (tmp_path / "clusters").exists()
    err = capsys.readouterr().err
    assert "dry run: cluster unit-dry was not made" in err and shlex.join(netns.dockerd(lab, lab.manager)) in err


def test_status_of_a_cluster_that_is_not_up(tmp_path):
    environ = {"CLUSTER_NAME": "unit-down", "CLUSTER_DIR": str(tmp_path)}
    settings = load_settings(root=tmp_path, environ=environ)
    ops = core.ClusterOps(layout.plan(settings), Context(settings, run=None))
    assert ops.status() == ["cluster unit-down is down"]


def test_a_worker_joins_through_the_api_and_the_token_is_never_shown(lab, tmp_path, capsys):
    w1 = lab.node("w1")
    body = layout.swarm_join_body(lab, w1, "SWMTKN-1-secret")
    assert body == {
        "ListenAddr": "198.18.7.12:2377",
        "AdvertiseAddr": "198.18.7.12",
        "RemoteAddrs": ["198.18.7.11:2377"],
        "JoinToken": "SWMTKN-1-secret",
    }
    shown = layout.shown_request(lab, w1, layout.JOIN_PATH, body)
    assert shown == (
        f'+ POST /swarm/join on {STATE}/w1/docker.sock {{"ListenAddr": "198.18.7.12:2377", '
        '"AdvertiseAddr": "198.18.7.12", "RemoteAddrs": ["198.18.7.11:2377"], "JoinToken": "<hidden>"}'
    )
    core.ClusterOps(lab, Context(load_settings(root=tmp_path), run=None, dry=True)).join(w1, "SWMTKN-1-secret")
    assert "SWMTKN" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "ours"),
    [
        (["dockerd", "--data-root", f"{STATE}/m/data", "--pidfile", f"{STATE}/m/docker.pid"], True),
        (["/usr/bin/dockerd", "--pidfile", f"{STATE}/m/docker.pid", "--host", "unix:///x"], True),
        (["dockerd", "--pidfile", f"{STATE}2/m/docker.pid"], False),
        (["dockerd", "--pidfile", f"{STATE}/w1/docker.pid"], False),
        (["dockerd"], False),
        (["sshd", "--pidfile", f"{STATE}/m/docker.pid"], False),
        (["bash", "-c", f"dockerd --pidfile {STATE}/m/docker.pid"], False),
        ([], False),
    ],
    ids=["dockerd", "dockerd-path", "other-cluster", "other-node", "another-dockerd", "not-dockerd", "shell", "gone"],
)
def test_a_pid_file_is_trusted_only_while_its_pid_is_the_engine_writing_it(argv, ours):
    assert hostprocess.is_engine_of(argv, STATE / "m" / "docker.pid") is ours


@pytest.mark.parametrize(
    ("argv", "ours"),
    [
        (["containerd", "--config", f"{STATE}/m/exec/containerd/containerd.toml"], True),
        (["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-address", f"{STATE}/w1/exec/c.sock"], True),
        (["dockerd", "--data-root", f"{STATE}/w2/data"], True),
        (["docker-proxy", "-container-ip", "10.0.0.2", "--data", str(STATE)], True),
        (["containerd", "--config", "/var/lib/lifecycle-cluster/lab2/m/exec/containerd.toml"], False),
        (["containerd", "--config", "/var/lib/lifecycle-cluster/lab-old/m/c.toml"], False),
        (["vim", f"{STATE}/m/dockerd.log"], False),
        (["sh", "-c", f"rm -rf {STATE}/m"], False),
        ([], False),
    ],
    ids=["containerd", "shim", "dockerd", "exact-path", "name2", "name-dash", "editor", "shell", "gone"],
)
def test_only_engine_programs_naming_a_path_inside_the_folder_are_signalled(argv, ours):
    assert hostprocess.names_folder(argv, STATE) is ours


def test_has_run_needs_the_arguments_in_a_row():
    assert hostprocess.has_run(["a", "--pidfile", "/p", "b"], ["--pidfile", "/p"])
    assert not hostprocess.has_run(["a", "--pidfile", "b", "/p"], ["--pidfile", "/p"])
    assert not hostprocess.has_run(["--pidfile"], ["--pidfile", "/p"])


@pytest.mark.parametrize(
    ("uid", "mode", "problem"),
    [
        (0, 0o40755, ""),
        (0, 0o40700, ""),
        (0, 0o40775, ""),
        (1000, 0o40755, "CLUSTER_DIR=/c is owned by uid 1000, not root"),
        (0, 0o41777, "CLUSTER_DIR=/c is writable by every user (mode 1777)"),
        (0, 0o40757, "CLUSTER_DIR=/c is writable by every user (mode 757)"),
    ],
    ids=["root-755", "root-700", "root-group-write", "user-owned", "tmp-like", "world-writable"],
)
def test_cluster_dir_must_be_roots_alone(uid, mode, problem):
    assert layout.cluster_dir_problem(Path("/c"), uid, mode) == problem


@pytest.mark.parametrize(
    ("is_dir", "is_link", "marker", "problem"),
    [
        (True, False, "lab\n", ""),
        (True, False, "lab", ""),
        (True, False, None, f"{STATE} has no .lifecycle-cluster file"),
        (True, False, "lab2\n", f"{STATE}/.lifecycle-cluster names cluster 'lab2', not 'lab'"),
        (True, False, "", f"{STATE}/.lifecycle-cluster names cluster '', not 'lab'"),
        (False, False, None, f"{STATE} is not a folder"),
        (True, True, "lab\n", f"{STATE} is a symbolic link"),
    ],
    ids=["ours", "no-newline", "no-marker", "other-cluster", "empty-marker", "a-file", "a-symlink"],
)
def test_only_a_folder_with_this_clusters_marker_is_removed(lab, is_dir, is_link, marker, problem):
    assert layout.marker_problem(lab, is_dir, is_link, marker) == problem


def test_cluster_dir_slash_name_home_is_not_a_cluster():
    """`CLUSTER_DIR=/ CLUSTER_NAME=home`: the plan names /home, which carries no marker, so down refuses it."""
    home = layout.plan(load_settings(root=Path("/nonexistent"), environ={"CLUSTER_DIR": "/", "CLUSTER_NAME": "home"}))
    assert home.state_dir == Path("/home")
    assert layout.marker_problem(home, True, False, None) == "/home has no .lifecycle-cluster file"


def test_down_refuses_a_folder_without_the_marker_and_removes_nothing(tmp_path, monkeypatch):
    from tests.helpers.recording import RecordingRunner

    monkeypatch.setattr(core.ClusterOps, "check_cluster_dir", lambda self: None)  # tmp_path: the tester's own
    environ = {"CLUSTER_NAME": "decoy", "CLUSTER_DIR": str(tmp_path)}
    decoy = layout.plan(load_settings(root=tmp_path, environ=environ))
    (tmp_path / "decoy" / "m").mkdir(parents=True)
    (tmp_path / "decoy" / "m" / "docker.pid").write_text(f"{os.getpid()}\n")
    runner = RecordingRunner()
    refusal = re.escape("has no .lifecycle-cluster file: not made by invoke cluster.up")
    with pytest.raises(UserError, match=refusal) as error:
        core.ClusterOps(decoy, Context(load_settings(root=tmp_path, environ=environ), runner)).down()
    assert "\n" not in str(error.value)
    assert runner.calls == [] and (tmp_path / "decoy" / "m" / "docker.pid").exists()
