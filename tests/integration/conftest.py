"""Shared helpers for tests against the real Docker engine: unique names, containers and volumes that are
always removed, and waiting with a deadline.

Tests get them through the session fixture `engine`, e.g.

    def test_x(engine):
        with engine.docker_volume() as volume, engine.docker_container("alpine", "-v", f"{volume}:/data") as name:
            engine.wait_for(lambda: ..., timeout=30, what="...")

or import them: `from conftest import ...` (pytest's default import mode puts this folder on sys.path; run the
integration tests as their own pytest run, `pytest tests/integration`, so `conftest` is this module).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

# The checkout on sys.path, so integration tests can import `lifecycle` however pytest is started (as tests/unit does).
CHECKOUT = Path(__file__).resolve().parents[2]
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    from lifecycle.runner import interrupt_on_sigterm

    interrupt_on_sigterm()  # SIGTERM (nox passing on a timeout) runs the fixtures' clean-up, as Ctrl-C does
    config.addinivalue_line(
        "markers", "integration: needs a running Docker engine (deselect with -m 'not integration')"
    )


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


@pytest.fixture(scope="session", autouse=True)
def no_images_left_behind() -> Iterator[None]:
    """After the run: every image this run's projects built, earlier builds included, is removed."""
    yield
    leftovers = images_built_by(CREATED_NAMES)
    if leftovers:
        docker("image", "rm", "--force", *leftovers, check=False)


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


@pytest.fixture(scope="session")
def engine() -> EngineHelpers:
    """The helpers above, once a Docker engine answers. Fails rather than skips: a silent skip proves nothing."""
    if docker("info", "--format", "{{.ServerVersion}}", check=False).returncode:
        pytest.fail("no Docker engine answers `docker info`; start it, or deselect with -m 'not integration'")
    return EngineHelpers()


# ------------------------------------------------------------------------------------------------------------------
# An isolated checkout for tests that drive the real `invoke` CLI: its own image name, compose project and port, so
# images and containers other people use at the same time (`project:*`, the default compose project) are never touched.

REPO_ROOT = CHECKOUT
ZIP = REPO_ROOT / "updated_zip" / "Project_playground.zip"
# The Python whose invoke and nox run the tasks: the nox session's (PYTHON_FOR_TASKS), else the one running pytest.
PYTHON_FOR_TASKS = os.environ.get("PYTHON_FOR_TASKS", sys.executable)
INVOKE_TIMEOUT = 300  # seconds for a task that does not build
BUILD_TIMEOUT = 1800  # seconds for a build: minutes when the layer cache is cold, seconds when warm
UP_TIMEOUT = 600  # seconds: invoke up builds (cached) and waits for health (its own deadline is 180 s)
HEALTH_TIMEOUT = 90
HTTPS_PROXY_HEADERS = {"X-Forwarded-Proto": "https"}  # the site redirects plain HTTP, except /health
# `docker run` options that run the prod image as compose runs it: init, read-only, tmpfs, no capabilities.
PROD_RUN_OPTIONS = (
    "--init",
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges:true",
)
# What a copy of the checkout leaves out: git, virtualenvs, caches, reports and the code zip (.env and
# .lifecycle, ignored by git but needed by the tasks, are copied).
# The release signing key and its passphrase (.lifecycle/signing/) stay behind: a copy releases unsigned.
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "reports", "updated_zip", "__pycache__", ".pytest_cache", ".ruff_cache", ".benchmarks",
    "*.private", "passphrase",
)  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def invoke_argv() -> list[str]:
    """The invoke CLI of the nox session (PYTHON_FOR_TASKS), else of the interpreter running pytest."""
    return [PYTHON_FOR_TASKS, "-m", "invoke"]


def copy_checkout(dest: Path) -> Path:
    """A copy of the checkout at dest (see COPY_IGNORE), symlinks kept as symlinks; returns dest."""
    shutil.copytree(REPO_ROOT, dest, ignore=COPY_IGNORE, symlinks=True)
    return dest


# Without a terminal (stdin is /dev/null), stdout and stderr combined in one text stream.
COMBINED_OUTPUT = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}


def run_combined(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run argv without a terminal; its stdout and stderr, combined, are .stdout. env is the whole environment
    (None: this process's)."""
    return subprocess.run(
        list(argv), cwd=cwd, env=dict(env) if env is not None else None, timeout=timeout, check=False, **COMBINED_OUTPUT
    )


def tool_env(env: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment plus env, without the names in drop."""
    full = {**os.environ, **(env or {})}
    for name in drop:
        full.pop(name, None)
    return full


def run_tool(
    module: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    timeout: float = 900,
    drop: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`python -m invoke|nox ARGS` (PYTHON_FOR_TASKS) with the environment plus env, minus drop, without a terminal;
    stdout and stderr combined in .stdout."""
    return run_combined([PYTHON_FOR_TASKS, "-m", module, *args], env=tool_env(env, drop), cwd=cwd, timeout=timeout)


def start_tool(
    module: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path = REPO_ROOT, drop: Sequence[str] = ()
) -> subprocess.Popen[str]:
    """run_tool's command started and not waited for, in a session of its own (so a test can signal its group)."""
    return subprocess.Popen(
        [PYTHON_FOR_TASKS, "-m", module, *args],
        cwd=cwd,
        env=tool_env(env, drop),
        start_new_session=True,
        **COMBINED_OUTPUT,
    )


def interrupt_when_running(process: subprocess.Popen[str], container: str, what: str) -> str:
    """Wait until container runs, SIGINT the process's group (as Ctrl-C does), return the process's output.

    The process must run in a session of its own (start_tool); it is killed if it outlives the deadline."""
    try:

        def running():
            if process.poll() is not None:
                raise AssertionError(f"{what} ended before pytest ran: {process.stdout.read()[-3000:]}")
            listed = docker("ps", "--quiet", "--filter", f"name=^{container}$", "--filter", "status=running").stdout
            return listed.strip()

        wait_for(running, timeout=1200, what="the pytest container to run", interval=1)
        time.sleep(3)  # pytest is collecting or sleeping in the slow test
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=180)
        return output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def last_line(text: str) -> str:
    """The last non-blank line ('' when there is none)."""
    lines = nonblank_lines(text)
    return lines[-1] if lines else ""


def assert_one_line(output: str, *words: str) -> str:
    """The last non-empty line names every word; nothing anywhere is a traceback."""
    line = last_line(output)
    assert "Traceback" not in output, output[-3000:]
    for word in words:
        assert word in line, f"{word!r} not in the last line {line!r}\n{output[-3000:]}"
    return line


@dataclass
class IsolatedCheckout:
    """Settings (through the environment) that give one test run its own images, compose project and port.

    Without db passwords the checkout's .env (or the defaults) provides them."""

    proj_name: str
    port: int
    db_password: str | None = None
    db_root_password: str | None = None
    root: Path = REPO_ROOT
    https_port: int = 0  # the proxy in front of prod (HTTPS_PORT); 0: a free one
    registry_port: int = 0  # the local registry (REGISTRY_PORT); 0: a free one
    # Tests that send HTTPS_PROXY_HEADERS to APP_PORT stand in for the TLS proxy: the app must believe them
    # (GUNICORN_FORWARDED_ALLOW_IPS=*). Off: the default, only the proxy's network is believed (test_https.py).
    trust_forwarded_headers: bool = True
    settings: dict[str, str] = field(default_factory=dict)  # more settings for every invoke (e.g. MEDIA=true)

    def __post_init__(self) -> None:
        self.https_port = self.https_port or free_port()
        self.registry_port = self.registry_port or free_port()

    @classmethod
    def new(cls, **fields) -> IsolatedCheckout:
        """A checkout with a name (`it-<random>`) and free ports of its own (app, HTTPS, registry)."""
        return cls(unique_name("it"), free_port(), **fields)

    @property
    def registry(self) -> str:
        """The local registry's address (`invoke registry.up`)."""
        return f"127.0.0.1:{self.registry_port}"

    @property
    def registry_volume(self) -> str:
        return f"{self.project}-registry_registry-data"

    @property
    def project(self) -> str:
        return self.proj_name  # COMPOSE_PROJECT_NAME is set to the same unique name

    @property
    def volume(self) -> str:
        return f"{self.project}_db-data"

    def image(self, stage: str) -> str:
        return f"{self.proj_name}:{stage}"

    @property
    def backups(self) -> Path:
        """This checkout's BACKUP_DIR: outside the repository, removed with the checkout."""
        return Path(tempfile.gettempdir()) / "lifecycle-it-backups" / self.proj_name

    def container(self, service: str) -> str:
        """The name compose gives the service's (first) container."""
        return f"{self.project}-{service}-1"

    @property
    def env(self) -> dict[str, str]:
        passwords = {"DB_PASSWORD": self.db_password, "DB_ROOT_PASSWORD": self.db_root_password}
        return {
            **os.environ,
            "PROJ_NAME": self.proj_name,
            "COMPOSE_PROJECT_NAME": self.project,
            "APP_PORT": str(self.port),
            "HTTPS_PORT": str(self.https_port),
            "REGISTRY_PORT": str(self.registry_port),
            "BACKUP_DIR": str(self.backups),
            "GUNICORN_FORWARDED_ALLOW_IPS": "*" if self.trust_forwarded_headers else "",
            **self.settings,
            **{name: value for name, value in passwords.items() if value is not None},
        }

    def invoke(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = INVOKE_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """`invoke ARGS` in the repo root with this checkout's settings (env overrides them); stdin is /dev/null.

        stdout and stderr are captured as text with ANSI colours removed."""
        done = subprocess.run(
            [*invoke_argv(), *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return subprocess.CompletedProcess(done.args, done.returncode, strip_ansi(done.stdout), strip_ansi(done.stderr))

    def invoke_combined(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """`invoke ARGS` as `invoke` runs it, but with stdout and stderr combined in .stdout, as they are (run_tool)."""
        return run_tool("invoke", *args, env={**self.env, **(env or {})}, cwd=self.root, timeout=timeout)

    def remove(self, timeout: float = INVOKE_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """`invoke down --volumes --yes --no-backup`, then what it left: this project's containers and volume, this
        name's images, its backups.

        Returns the finished `invoke down`."""
        down = self.invoke("down", "--volumes", "--yes", "--no-backup", timeout=timeout)
        shutil.rmtree(self.backups, ignore_errors=True)
        for container in self.containers():  # only if down failed: still only this project's containers
            docker("rm", "--force", "--volumes", container, check=False)
        docker("volume", "rm", "--force", self.volume, f"{self.project}_media", check=False)
        tags = self.images()
        if tags:
            docker("image", "rm", "--force", *tags, check=False)
        return down

    def images(self) -> list[str]:
        """Every tag of this checkout's image name."""
        done = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", self.proj_name)
        return sorted(line for line in done.stdout.split() if line.startswith(f"{self.proj_name}:"))

    def containers(self, service: str | None = None) -> list[str]:
        """Ids of this compose project's containers (running or not), optionally of one service."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return docker("ps", "--all", "--quiet", *filters).stdout.split()

    def health(self, service: str) -> str:
        """The docker health status of the service's one container ('' when there is none or no healthcheck)."""
        ids = self.containers(service)
        if len(ids) != 1:
            return ""
        done = docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", ids[0], check=False)
        return done.stdout.strip()

    def volume_exists(self) -> bool:
        return docker("volume", "inspect", self.volume, check=False).returncode == 0


def describe(done: subprocess.CompletedProcess[str]) -> str:
    """A failed command's exit status and output, for assertion messages."""
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"


@pytest.fixture(scope="session")
def isolated(engine: EngineHelpers) -> Iterator[IsolatedCheckout]:
    """One isolated checkout per test session; afterwards its containers, network, volume and images are removed."""
    checkout = IsolatedCheckout.new(db_password=random_secret(24), db_root_password=random_secret(24))
    try:
        yield checkout
    finally:
        down = checkout.remove(timeout=180)
        if down.returncode:
            print(f"warning: `invoke down --volumes --yes` of {checkout.project} failed: {describe(down)}")


@pytest.fixture(scope="session")
def stage_builds(isolated: IsolatedCheckout) -> dict[str, subprocess.CompletedProcess[str]]:
    """`invoke build --stage stage` and `--stage prod` run once for the session (cached after the first time).

    Returns the finished commands, so tests can assert on what the CLI said as well as use the images."""
    return {stage: isolated.invoke("build", "--stage", stage, timeout=BUILD_TIMEOUT) for stage in ("stage", "prod")}


@pytest.fixture(scope="session")
def built_images(isolated: IsolatedCheckout, stage_builds) -> dict[str, str]:
    """stage -> image tag for stage and prod; fails (with the build output) when a build failed."""
    for stage, done in stage_builds.items():
        if done.returncode:
            pytest.fail(f"invoke build --stage {stage} failed: {describe(done)}")
    return {stage: isolated.image(stage) for stage in stage_builds}


@contextmanager
def project_up(*stages: str) -> Iterator[IsolatedCheckout]:
    """A new isolated checkout (db passwords from .env) with `invoke up --stage S` done for each stage, removed
    afterwards. The first stage serves on the checkout's port, each further one on a free port of its own."""
    project = IsolatedCheckout.new()
    try:
        for index, stage in enumerate(stages):
            port = project.port if index == 0 else free_port()
            done = project.invoke_combined("up", "--stage", stage, env={"APP_PORT": str(port)})
            assert done.returncode == 0, done.stdout[-4000:]
        yield project
    finally:
        project.remove()


@pytest.fixture(scope="module")
def stack(engine: EngineHelpers) -> Iterator[IsolatedCheckout]:
    """One isolated prod stack (`invoke up --stage prod`) per test module, for tests that do not destroy it.

    A module that needs other stages up overrides this fixture (see test_least_privilege.py)."""
    with project_up("prod") as project:
        yield project


@pytest.fixture(scope="module")
def settings():
    """The checkout's resolved settings (.env, images.env, the environment)."""
    from lifecycle.settings import load_settings

    return load_settings(REPO_ROOT)
