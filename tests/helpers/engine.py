"""The real Docker engine, for tests: unique names, `docker`, containers and volumes that are always removed, and
waiting with a deadline.

Tests get them through the integration session fixture `engine`, e.g.

    def test_x(engine):
        with engine.docker_volume() as volume, engine.docker_container("alpine", "-v", f"{volume}:/data") as name:
            engine.wait_for(lambda: ..., timeout=30, what="...")

or import them: `from tests.helpers.engine import docker, wait_for`.
"""

from __future__ import annotations

import secrets
import socket
import string
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

from lifecycle.context import wait_until

T = TypeVar("T")


def clean_up_on_sigterm() -> None:
    """SIGTERM (nox passing on a timeout) runs the fixtures' clean-up, as Ctrl-C does (each conftest's
    pytest_configure)."""
    from lifecycle.runner import interrupt_on_sigterm

    interrupt_on_sigterm()


CREATED_NAMES: set[str] = set()  # every unique_name() of this run: the images its projects built go at the end


def unique_name(prefix: str) -> str:
    """A name no other test run uses, so parallel runs and leftovers never collide."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    CREATED_NAMES.add(name)
    return name


def images_built_by(names: set[str]) -> list[str]:
    """Ids of the images, tagged or not (a later build took the tag), whose compose project is one of `names`
    or derives from one (`NAME-<checkout hash>`, `NAME-qa`)."""
    label = "io.lifecycle.compose-project"
    ids = set(docker("image", "ls", "--quiet", "--no-trunc", "--filter", f"label={label}").stdout.split())
    if not ids or not names:
        return []
    found = docker("image", "inspect", "--format", f'{{{{.Id}}}} {{{{index .Config.Labels "{label}"}}}}', *ids,
                   check=False).stdout.splitlines()  # fmt: skip
    pairs = [line.partition(" ")[::2] for line in found]
    return sorted({image for image, project in pairs if any(project.startswith(name) for name in names)})


GWBRIDGE = "docker_gwbridge"  # the local network `docker swarm init` makes and `docker swarm leave` keeps


def gwbridge_exists() -> bool:
    return docker("network", "inspect", GWBRIDGE, check=False).returncode == 0


def remove_gwbridge() -> None:
    """After leaving swarm mode, when the test's `swarm init` made it: the engine as it was found."""
    docker("network", "rm", GWBRIDGE, check=False)


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
    """Call probe until it returns something truthy; fail the test naming `what` after timeout seconds.

    The library's one deadline loop (lifecycle.context.wait_until) with a test failure instead of a UserError."""
    answer = wait_until(probe, timeout, interval, None)
    if not answer:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
    return answer


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_secret(length: int = 50) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


class EngineHelpers:
    unique_name = staticmethod(unique_name)
    docker = staticmethod(docker)
    docker_volume = staticmethod(docker_volume)
    docker_container = staticmethod(docker_container)
    wait_for = staticmethod(wait_for)
    free_port = staticmethod(free_port)
    random_secret = staticmethod(random_secret)
