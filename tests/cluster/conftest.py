"""The cluster under test: three engines in network namespaces, brought up once through the real CLI
(`invoke cluster.up`) under a unique name and registry port, and always brought down (`invoke cluster.down`).

Images reach the nodes only through the cluster's registry: `app_images` builds two tiny HTTP images on the host
engine, pushes them to 127.0.0.1:PORT and removes the host's tags again. The helpers live in tests/helpers/cluster.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from lifecycle import cluster as core
from lifecycle import cluster_layout as layout
from lifecycle.context import Context
from lifecycle.runner import SubprocessRunner
from lifecycle.settings import load_settings
from tests.helpers.cluster import APP_COMMAND, ClusterUnderTest, invoke, record
from tests.helpers.engine import clean_up_on_sigterm, free_port


def pytest_configure(config: pytest.Config) -> None:
    clean_up_on_sigterm()


@pytest.fixture(scope="session")
def cluster_env() -> dict[str, str]:
    name = f"ct{uuid.uuid4().hex[:6]}"
    return {**os.environ, "CLUSTER_NAME": name, "CLUSTER_REGISTRY_PORT": str(free_port())}


@pytest.fixture(scope="session")
def live(cluster_env) -> Iterator[ClusterUnderTest]:
    settings = load_settings(environ=cluster_env)
    ops = core.ClusterOps(layout.plan(settings), Context(settings, SubprocessRunner(echo=False)))
    started = time.monotonic()
    try:
        done = invoke("cluster.up", cluster_env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SWMTKN" not in done.stdout + done.stderr, "a swarm join token was printed"
        assert '"JoinToken": "<hidden>"' in done.stderr  # the workers' joins were shown, without the token
        record(up_seconds=round(time.monotonic() - started, 1))
        yield ClusterUnderTest(ops, cluster_env)
    finally:
        down = invoke("cluster.down", cluster_env)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="session")
def app_images(live) -> list[str]:
    """Two versions of the app, pushed to the cluster's registry only (the host keeps no tag of them)."""
    base = load_settings().base_image
    dockerfile = f"FROM {base}\nCMD {json.dumps(['python3', '-c', APP_COMMAND])}\n"
    images = []
    for version in ("v1", "v2"):
        image = f"{live.cluster.registry}/{live.cluster.name}-app:{version}"
        build = ["docker", "build", "--quiet", "--label", f"io.lifecycle.test-version={version}", "--tag", image, "-"]
        subprocess.run(build, input=dockerfile, text=True, capture_output=True, check=True, timeout=300)
        try:
            subprocess.run(["docker", "push", "--quiet", image], capture_output=True, check=True, timeout=300)
        finally:
            subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)
        images.append(image)
    return images
