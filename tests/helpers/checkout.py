"""An isolated checkout for tests that drive the real `invoke` CLI: its own image name, compose project and ports, so
images and containers other people use at the same time (`project:*`, the default compose project) are never
touched; and copies of the checkout for tests that change files."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import CHECKOUT
from tests.helpers.engine import docker, free_port, unique_name
from tests.helpers.tools import INVOKE_TIMEOUT, invoke_argv, run_tool, strip_ansi

REPO_ROOT = CHECKOUT
ZIP = REPO_ROOT / "updated_zip" / "Project_playground.zip"
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


def copy_checkout(dest: Path) -> Path:
    """A copy of the checkout at dest (see COPY_IGNORE), symlinks kept as symlinks; returns dest."""
    shutil.copytree(REPO_ROOT, dest, ignore=COPY_IGNORE, symlinks=True)
    return dest


# Test releases ship past the vulnerability gate (its findings are the base image's, not under test here; the gate
# itself is tests/integration/test_release_trust.py's): the reason is recorded with each release, as a user's is.
RELEASE_ALLOW = "e2e: the base image's pending updates are not under test"


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
            "RELEASE_ALLOW": RELEASE_ALLOW,
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
