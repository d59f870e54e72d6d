"""`invoke registry.up` / `registry.down` on the real engine: loopback only, answers, data kept by down, deleted
only with a confirmed --volumes. Runs on a free port of its own, never 5000."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.helpers.checkout import IsolatedCheckout
from tests.helpers.engine import docker, unique_name
from tests.helpers.tools import assert_one_line, describe

pytestmark = pytest.mark.integration

TINY_IMAGE_SOURCE = "lifecycle/debian"  # present wherever the suite runs (offline images) or pulled


@pytest.fixture(scope="module")
def checkout(engine):
    project = IsolatedCheckout.new()
    try:
        yield project
    finally:
        project.invoke("registry.down", "--volumes", "--yes")
        docker("volume", "rm", "--force", project.registry_volume, check=False)


def catalog(address: str) -> list[str]:
    with urllib.request.urlopen(f"http://{address}/v2/_catalog", timeout=10) as response:
        return json.load(response)["repositories"]


def push_tiny_image(address: str, name: str) -> None:
    source = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", TINY_IMAGE_SOURCE).stdout.split()[0]
    target = f"{address}/{name}:probe"
    docker("tag", source, target)
    try:
        docker("push", target)
    finally:
        docker("image", "rm", target, check=False)


def test_up_answers_on_loopback_only(checkout):
    done = checkout.invoke("registry.up", timeout=600)
    assert done.returncode == 0, describe(done)
    assert f"http://{checkout.registry}/" in done.stdout
    assert catalog(checkout.registry) == []
    container = f"{checkout.project}-registry-registry-1"
    bindings = json.loads(docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", container).stdout)
    assert bindings == {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(checkout.registry_port)}]}


def test_second_up_changes_nothing(checkout):
    container = f"{checkout.project}-registry-registry-1"
    started = docker("inspect", "--format", "{{.State.StartedAt}}", container).stdout
    done = checkout.invoke("registry.up")
    assert done.returncode == 0, describe(done)
    assert docker("inspect", "--format", "{{.State.StartedAt}}", container).stdout == started


def test_down_keeps_the_pushed_images(checkout):
    name = unique_name("probe")
    push_tiny_image(checkout.registry, name)
    assert checkout.invoke("registry.down").returncode == 0
    assert docker("volume", "inspect", checkout.registry_volume, check=False).returncode == 0
    assert checkout.invoke("registry.up").returncode == 0
    assert name in catalog(checkout.registry)


def test_down_volumes_without_confirmation_deletes_nothing(checkout):
    done = checkout.invoke("registry.down", "--volumes")
    assert done.returncode == 1
    assert_one_line(done.stderr, "--volumes deletes every pushed image", "--yes")
    assert catalog(checkout.registry), "the registry must still run with its images"


def test_down_volumes_yes_deletes_the_images(checkout):
    assert checkout.invoke("registry.down", "--volumes", "--yes").returncode == 0
    assert docker("volume", "inspect", checkout.registry_volume, check=False).returncode != 0
