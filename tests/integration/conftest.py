"""Shared helpers for tests against the real Docker engine: unique names, containers and volumes that are
always removed, and waiting with a deadline.

Tests get them through the session fixture `engine` (conftest modules are not importable by name), e.g.

    def test_x(engine):
        with engine.docker_volume() as volume, engine.docker_container("alpine", "-v", f"{volume}:/data") as name:
            engine.wait_for(lambda: ..., timeout=30, what="...")
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

import pytest

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs a running Docker engine (deselect with -m 'not integration')"
    )


def unique_name(prefix: str) -> str:
    """A name no other test run uses, so parallel runs and leftovers never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def docker(*args: str, check: bool = True, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS`, capturing text output; on failure with check, show what docker said."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=dict(env) if env else None, check=False
    )
    if check and done.returncode:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


@contextmanager
def docker_volume(prefix: str = "it-volume") -> Iterator[str]:
    name = unique_name(prefix)
    docker("volume", "create", name)
    try:
        yield name
    finally:
        docker("volume", "rm", "-f", name, check=False)


@contextmanager
def docker_container(
    image: str,
    *run_options: str,
    command: Sequence[str] = (),
    prefix: str = "it",
    env: Mapping[str, str] | None = None,
    before_start: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """A detached container, removed (with its anonymous volumes) however the test ends.

    env is the docker CLI's environment, so `-e NAME` options pass secrets without putting them on a command line;
    before_start(name) runs between create and start, e.g. to `docker cp` files in.
    """
    name = unique_name(prefix)
    try:
        docker("create", "--name", name, *run_options, image, *command, env=env)
        if before_start:
            before_start(name)
        docker("start", name)
        yield name
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Call probe until it returns something truthy; fail naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class EngineHelpers:
    unique_name = staticmethod(unique_name)
    docker = staticmethod(docker)
    docker_volume = staticmethod(docker_volume)
    docker_container = staticmethod(docker_container)
    wait_for = staticmethod(wait_for)


@pytest.fixture(scope="session")
def engine() -> EngineHelpers:
    """The helpers above, once a Docker engine answers. Fails rather than skips: a silent skip proves nothing."""
    if docker("info", "--format", "{{.ServerVersion}}", check=False).returncode:
        pytest.fail("no Docker engine answers `docker info`; start it, or deselect with -m 'not integration'")
    return EngineHelpers()
