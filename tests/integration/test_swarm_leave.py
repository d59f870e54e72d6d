"""`invoke swarm.leave` with a compose-style stack running: its containers still find each other by name.

Leaving swarm mode makes Engine 20.10 (and later) forget the DNS names of running containers on user-defined
networks (moby/moby#45144); the task restarts those containers. Runs only on an engine outside swarm mode (it
enters swarm mode and leaves it again), and removes its network and containers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.checkout import IsolatedCheckout
from tests.helpers.engine import docker, gwbridge_exists, remove_gwbridge, unique_name
from tests.helpers.tools import describe

# Leaving swarm mode restarts every container on a user-defined network: nox -s e2e runs these alone (conftest).
pytestmark = [pytest.mark.integration, pytest.mark.swarm]


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def resolves(container: str, name: str) -> bool:
    return docker("exec", container, "getent", "hosts", name, check=False).returncode == 0


@pytest.fixture
def two_containers(settings) -> Iterator[tuple[str, str]]:
    """Two running containers on a network of their own, as compose makes them (`--init`: stop at once)."""
    network, names = unique_name("it-net"), (unique_name("it-one"), unique_name("it-two"))
    docker("network", "create", network)
    try:
        for name in names:
            docker(
                "run", "--detach", "--init", "--name", name, "--network", network, settings.base_image, "sleep", "600"
            )
        yield names
    finally:
        docker("rm", "--force", *names, check=False)
        docker("network", "rm", network, check=False)


def test_leaving_swarm_mode_keeps_running_containers_resolvable(engine, two_containers):
    if swarm_state() == "active":
        pytest.skip("the engine is in swarm mode already; leaving it is not this test's to do")
    one, two = two_containers
    assert resolves(one, two) and resolves(two, one)
    checkout = IsolatedCheckout.new()
    had_gwbridge = gwbridge_exists()
    try:
        # Plain `swarm init`: `invoke swarm.init` also labels the node, and leaving while the engine still
        # handles that update keeps the ingress network until the engine restarts (README, Troubleshooting).
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
        done = checkout.invoke("swarm.leave", "--yes")
        assert done.returncode == 0, describe(done)
        assert "restarting" in done.stderr
    finally:
        if swarm_state() == "active":
            docker("swarm", "leave", "--force", check=False)
        if not had_gwbridge:
            remove_gwbridge()
    assert resolves(one, two) and resolves(two, one)
