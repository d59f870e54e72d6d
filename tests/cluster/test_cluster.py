"""A three-node swarm on one machine, for real: nodes, registry pulls, overlay DNS across nodes, a node that dies
under load, and a worker that cannot reach the registry. One cluster for the whole module (see conftest)."""

from __future__ import annotations

import json
import subprocess
import time

from lifecycle.commands import netns
from tests.helpers.cluster import APP_PORT, ClusterUnderTest, converged, invoke, record, service_create, service_remove
from tests.helpers.engine import wait_for

# A bounded load generator (count, time, and a stop file) that runs in a client container on one node and talks to
# the replicas over the overlay network: it resolves the service name (DNS round robin) before each request, skips
# an address that just failed for a few seconds (a proxy's passive health check) and retries a failed request once
# on another address. It prints {"ok", "failed" (after the retry), "errors" (connection failures seen)} as JSON.
LOAD = """
import json, os, socket, sys, threading, time, urllib.request
service, port, threads, max_requests, max_seconds = sys.argv[1], int(sys.argv[2]), 4, 20000, 150
counts = {"ok": 0, "failed": 0, "errors": 0}
resting = {}
lock = threading.Lock()
end = time.monotonic() + max_seconds

def addresses():
    try:
        found = sorted({a[4][0] for a in socket.getaddrinfo(service, port, proto=socket.IPPROTO_TCP)})
    except OSError:
        return []
    now = time.monotonic()
    return [ip for ip in found if resting.get(ip, 0) < now]

def attempt(ip):
    try:
        urllib.request.urlopen(f"http://{ip}:{port}/", timeout=2).read()
        return True
    except OSError:
        with lock:
            counts["errors"] += 1
            resting[ip] = time.monotonic() + 5
        return False

def worker(offset):
    sent = 0
    while time.monotonic() < end and not os.path.exists("/tmp/stop"):
        ips = addresses()
        sent += 1
        done = bool(ips) and (attempt(ips[(sent + offset) % len(ips)]) or any(attempt(ip) for ip in addresses()[:1]))
        with lock:
            counts["ok" if done else "failed"] += 1
            if counts["ok"] + counts["failed"] >= max_requests:
                return
        time.sleep(0.02)

pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
[t.start() for t in pool]
[t.join() for t in pool]
print(json.dumps(counts))
"""
LOAD_THREADS = 4  # the most requests that can be in flight on the node that dies


def test_three_nodes_ready_one_manager(live: ClusterUnderTest):
    rows = [json.loads(line) for line in live.docker("m", "node", "ls", "--format", "{{json .}}").splitlines()]
    assert sorted(row["Hostname"] for row in rows) == sorted(live.hostname(n) for n in ("m", "w1", "w2"))
    assert {row["Status"] for row in rows} == {"Ready"}
    assert [row["Hostname"] for row in rows if row["ManagerStatus"]] == [live.hostname("m")]
    assert live.docker("w1", "info", "--format", "{{.Swarm.ControlAvailable}}").strip() == "false"


def test_replicas_spread_over_the_nodes_and_workers_pull_from_the_registry(live, app_images):
    name = f"{live.cluster.name}-spread"
    started = time.monotonic()
    service_create(
        live, name, app_images[0], "--replicas", "3", "--publish", f"mode=host,target={APP_PORT},published=8080"
    )
    try:
        nodes = wait_for(converged(live, name, 3), 180, "3 replicas running")
        record(converge_3_nodes_seconds=round(time.monotonic() - started, 1))
        assert sorted(nodes) == sorted(live.hostname(n) for n in ("m", "w1", "w2"))
        for worker in ("w1", "w2"):  # nothing but the registry could have put the image there
            pulled = live.docker(worker, "image", "ls", "--format", "{{.Repository}}")  # by digest: no tag
            assert app_images[0].rsplit(":", 1)[0] in pulled.split()
        answers = set()
        for node in live.cluster.nodes:  # the host-mode port on each node's address, from the manager's namespace
            url = f"http://{node.address}:8080/"
            fetch = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
            done = live.in_netns("m", "python3", "-c", fetch)
            assert done.returncode == 0, done.stderr
            answers.add(done.stdout.strip())
        assert len(answers) == 3
    finally:
        service_remove(live, name)


def test_a_client_on_one_node_reaches_replicas_on_the_others_by_dns(live, app_images):
    name = f"{live.cluster.name}-dns"
    service_create(live, name, app_images[0], "--replicas", "3")
    try:
        wait_for(converged(live, name, 3), 180, "3 replicas running")
        probe = (
            "import socket, urllib.request\n"
            f"ips = sorted({{a[4][0] for a in socket.getaddrinfo('{name}', {APP_PORT}, proto=socket.IPPROTO_TCP)}})\n"
            f"answer = lambda ip: urllib.request.urlopen(f'http://{{ip}}:{APP_PORT}/', timeout=5).read().decode()\n"
            "print(' '.join(answer(ip) for ip in ips))"
        )
        out = live.docker("m", "run", "--rm", "--network", f"{name}-net", app_images[0], "python3", "-c", probe)
        replicas = out.split()
        containers = {n: live.docker(n, "ps", "--quiet", "--filter", f"name={name}.").split() for n in ("w1", "w2")}
        assert len(set(replicas)) == 3
        for node, ids in containers.items():  # the replicas answering include the ones on each worker
            assert any(
                replica.startswith(tuple(ids)) or any(i.startswith(replica) for i in ids) for replica in replicas
            ), node
    finally:
        service_remove(live, name)


def test_a_worker_dies_under_load_swarm_reschedules_and_it_rejoins(live, app_images):
    name = f"{live.cluster.name}-fault"
    w2 = live.cluster.node("w2")
    service_create(live, name, app_images[0], "--replicas", "3")
    load = None
    try:
        wait_for(converged(live, name, 3), 180, "3 replicas running")
        client = f"{name}-load"
        load = subprocess.Popen(
            netns.docker(live.cluster, live.cluster.manager, "run", "--rm", "--name", client, "--network",
                         f"{name}-net", app_images[0], "python3", "-c", LOAD, name, str(APP_PORT)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(
            lambda: live.docker("m", "ps", "--quiet", "--filter", f"name={client}").strip(), 60, "the load running"
        )
        time.sleep(3)
        stopped = time.monotonic()
        live.ops.stop_engine(w2)
        survivors = wait_for(
            lambda: (nodes := converged(live, name, 3)()) and live.hostname("w2") not in nodes and nodes,
            150,
            "the dead worker's replica rescheduled on the other nodes",
        )
        reschedule = time.monotonic() - stopped
        time.sleep(3)  # the load keeps running against the rescheduled replicas
        live.docker("m", "exec", client, "touch", "/tmp/stop")
        out, err = load.communicate(timeout=60)
        assert load.returncode == 0, err
        counts = json.loads(out)
        print(f"node down under load: {counts}, rescheduled in {reschedule:.1f}s")
        record(node_down_failed_requests=counts["failed"], node_down_connection_errors=counts["errors"],
               node_down_requests=counts["ok"] + counts["failed"], reschedule_seconds=round(reschedule, 1))  # fmt: skip
        assert set(survivors) == {live.hostname("m"), live.hostname("w1")}
        assert counts["ok"] > 0
        assert counts["failed"] <= LOAD_THREADS, counts

        started = time.monotonic()
        live.ops.start_engine(w2)
        wait_for(lambda: live.ops.nodes_ready().get(live.hostname("w2")) == "Ready", 120, "w2 Ready again")
        record(rejoin_seconds=round(time.monotonic() - started, 1))
    finally:
        if load and load.poll() is None:
            load.kill()
        if not live.ops.engine_running(w2):
            live.ops.start_engine(w2)
        service_remove(live, name)


def test_a_worker_without_the_registry_makes_an_update_roll_back_with_the_reason(live, app_images):
    name = f"{live.cluster.name}-roll"
    manager = live.cluster.manager
    block = ["OUTPUT", "-p", "tcp", "-d", manager.address, "--dport", str(live.cluster.registry_port), "-j", "REJECT"]
    service_create(live, name, app_images[0], "--replicas", "3", "--replicas-max-per-node", "1")
    try:
        wait_for(converged(live, name, 3), 180, "3 replicas, one per node")
        assert live.in_netns("w2", "iptables", "-I", *block).returncode == 0
        live.docker(
            "m", "service", "update", "--detach", "--image", app_images[1], "--update-failure-action", "rollback",
            "--update-monitor", "5s", "--update-max-failure-ratio", "0", name,
        )  # fmt: skip

        def update_state() -> str | None:
            state = json.loads(live.docker("m", "service", "inspect", "--format", "{{json .UpdateStatus}}", name))
            return state["State"] if state and state["State"] in ("rollback_completed", "rollback_paused") else None

        wait_for(update_state, 300, "the update rolled back")
        status = invoke("cluster.status", live.env)
        assert status.returncode == 0, status.stderr
        lines = [line.strip() for line in status.stdout.splitlines() if line.strip().startswith(f"{name}:")]
        print("\n".join(lines))
        assert len(lines) == 1
        assert "rolled back" in lines[0] or "rollback" in lines[0]
        assert live.hostname("w2") in lines[0] and app_images[1].split("/")[-1].split(":")[0] in lines[0]
        assert live.running_nodes(name) and all(
            t["Image"].startswith(app_images[0]) for t in live.tasks(name) if t["DesiredState"] == "Running"
        )
    finally:
        live.in_netns("w2", "iptables", "-D", *block)
        service_remove(live, name)
