"""Bad input with the real engine: every mistake ends with a non-zero exit and ONE informative last line (no
traceback), and changes or loses nothing.

Every run uses its own project (`PROJ_NAME`/`COMPOSE_PROJECT_NAME=it-<random>`, a free `APP_PORT`); what a test
makes is removed in a `finally`.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PYTHON = os.environ.get("PYTHON_FOR_TASKS", sys.executable)
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "reports", "updated_zip", "__pycache__", ".pytest_cache", ".ruff_cache", ".benchmarks"
)

sys.path.insert(0, str(ROOT))
from lifecycle.settings import load_settings  # noqa: E402


# ------------------------------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_tool(
    module: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`python -m invoke ARGS` without a terminal; stdout and stderr combined."""
    return subprocess.run(
        [PYTHON, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_one_line(output: str, *words: str) -> str:
    """The last non-empty line names every word; nothing anywhere is a traceback."""
    line = last_line(output)
    assert "Traceback" not in output, output[-3000:]
    for word in words:
        assert word in line, f"{word!r} not in the last line {line!r}\n{output[-3000:]}"
    return line


@dataclass
class Project:
    name: str
    port: int

    @classmethod
    def new(cls) -> Project:
        return cls(f"it-{uuid.uuid4().hex[:8]}", free_port())

    @property
    def env(self) -> dict[str, str]:
        return {"PROJ_NAME": self.name, "COMPOSE_PROJECT_NAME": self.name, "APP_PORT": str(self.port)}

    def invoke(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 900):
        return run_tool("invoke", *args, env={**self.env, **(env or {})}, timeout=timeout)

    def container(self, service: str) -> str:
        return f"{self.name}-{service}-1"

    def containers(self, engine) -> list[str]:
        label = f"label=com.docker.compose.project={self.name}"
        return engine.docker("ps", "-a", "--quiet", "--filter", label).stdout.split()

    def cleanup(self, engine) -> None:
        run_tool("invoke", "down", "--volumes", "--yes", env=self.env, timeout=300)
        for stage in ("dev", "test-qa", "stage", "prod"):
            engine.docker("image", "rm", f"{self.name}:{stage}", check=False)


@pytest.fixture(scope="module")
def settings():
    return load_settings(ROOT)


@pytest.fixture(scope="module")
def stack(engine) -> Iterator[Project]:
    """One isolated prod stack (`invoke up --stage prod`): its image, network and db for the tests below."""
    project = Project.new()
    try:
        done = project.invoke("up", "--stage", "prod")
        assert done.returncode == 0, done.stdout[-4000:]
        yield project
    finally:
        project.cleanup(engine)


@pytest.fixture
def project(engine) -> Iterator[Project]:
    """A fresh project that a test expects to stay empty; removed whatever happens."""
    fresh = Project.new()
    try:
        yield fresh
    finally:
        fresh.cleanup(engine)


def docker_run(engine, image: str, *options: str, env: Mapping[str, str] | None = None, timeout: float = 120):
    """`docker run` in the foreground (removed afterwards): (exit status, combined output)."""
    name = engine.unique_name("it-bad")
    try:
        done = subprocess.run(
            [
                "docker",
                "run",
                "--name",
                name,
                "--init",
                "--read-only",
                "--tmpfs",
                "/tmp",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges:true",
                *options,
                image,
            ],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        return done.returncode, done.stdout
    finally:
        engine.docker("rm", "--force", "--volumes", name, check=False)


# ------------------------------------------------------------------------------------------ the task suite
def test_unknown_stage(project):
    done = project.invoke("build", "--stage", "nope")
    assert done.returncode != 0
    assert_one_line(done.stdout, "unknown stage 'nope'", "prod")


def test_app_port_not_a_number(project, engine):
    done = project.invoke("up", "--stage", "prod", env={"APP_PORT": "abc"})
    assert done.returncode != 0
    assert_one_line(done.stdout, "APP_PORT='abc'")
    assert project.containers(engine) == []


def test_prod_without_secret_key_is_refused_before_anything_starts(project, engine):
    done = project.invoke("up", "--stage", "prod", env={"DJANGO_SECRET_KEY": ""})
    assert done.returncode != 0
    assert_one_line(done.stdout, "DJANGO_SECRET_KEY", "prod")
    assert project.containers(engine) == []


def test_engine_not_running(project):
    done = project.invoke("up", "--stage", "prod", env={"DOCKER_HOST": "unix:///nonexistent.sock"}, timeout=120)
    assert done.returncode != 0
    assert_one_line(done.stdout, "engine is not reachable", "scripts/bootstrap")


def test_only_compose_v1(project, tmp_path, engine):
    hidden = {**os.environ, "DOCKER_CONFIG": str(tmp_path)}
    probe = subprocess.run(["docker", "compose", "version"], env=hidden, capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        pytest.skip("a system-wide Compose v2 plugin answers even with an empty DOCKER_CONFIG; cannot hide it")
    done = project.invoke("up", "--stage", "prod", env={"DOCKER_CONFIG": str(tmp_path)}, timeout=120)
    assert done.returncode != 0
    assert_one_line(done.stdout, "docker compose is missing", "Compose v2")
    assert project.containers(engine) == []


def test_port_in_use_is_named_and_nothing_starts(project, engine):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", project.port))
        taken.listen()
        done = project.invoke("up", "--stage", "prod")
    assert done.returncode != 0
    assert_one_line(done.stdout, f"127.0.0.1:{project.port}", "APP_PORT", "already in use")
    assert project.containers(engine) == []


def test_python_version_missing_from_base_image(project, settings):
    done = project.invoke("build", "--stage", "prod", env={"PY_VERSION": "3.99"}, timeout=300)
    assert done.returncode != 0
    base = f"{settings['BASE_IMAGE']}:3.99-{settings['PY_BASE']}"
    assert_one_line(done.stdout, f"base image {base}", "PY_VERSION")


def test_env_file_syntax_error_names_the_line_and_keeps_the_file(tmp_path, engine):
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, ignore=COPY_IGNORE, symlinks=True)
    if (ROOT / ".lifecycle").is_dir():
        shutil.copytree(ROOT / ".lifecycle", copy / ".lifecycle", dirs_exist_ok=True)
    original = (ROOT / ".env").read_bytes() if (ROOT / ".env").is_file() else b""
    if original and not original.endswith(b"\n"):
        original += b"\n"
    broken = original + b"this line is not an assignment\n"
    bad_line = broken.decode().count("\n")
    (copy / ".env").write_bytes(broken)
    name = f"it-{uuid.uuid4().hex[:8]}"
    done = run_tool("invoke", "ps", cwd=copy, env={"PROJ_NAME": name, "COMPOSE_PROJECT_NAME": name}, timeout=120)
    assert done.returncode != 0
    assert_one_line(done.stdout, f".env line {bad_line}")
    assert (copy / ".env").read_bytes() == broken


def test_down_volumes_without_yes_and_without_a_terminal_is_refused(stack, engine):
    volume = f"{stack.name}_db-data"
    engine.docker("volume", "inspect", volume)
    running = sorted(
        engine.docker("ps", "--quiet", "--filter", f"label=com.docker.compose.project={stack.name}").stdout.split()
    )
    done = stack.invoke("down", "--volumes")
    assert done.returncode != 0
    assert_one_line(done.stdout, "--yes", stack.name)
    assert engine.docker("volume", "inspect", volume, check=False).returncode == 0, "the volume was deleted"
    now = sorted(
        engine.docker("ps", "--quiet", "--filter", f"label=com.docker.compose.project={stack.name}").stdout.split()
    )
    assert now == running, "containers were stopped although the command was refused"


# ------------------------------------------------------------------------------------------ the code zip
@pytest.fixture
def zip_dir() -> Iterator[Path]:
    """A ZIP_DIR inside the checkout (the build context), removed afterwards."""
    folder = ROOT / f".it-zip-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compose_build(engine, settings, zip_dir: Path, name: str):
    """The image path, without `invoke build` (which would re-zip): `docker compose build prod`."""
    env = {**settings.env, "PROJ_NAME": name, "ZIP_DIR": zip_dir.name, "COMPOSE_PROJECT_NAME": name}
    argv = [
        "docker",
        "compose",
        "--project-name",
        name,
        "--file",
        str(ROOT / "docker" / "compose.yaml"),
        "--profile",
        "prod",
        "build",
        "prod",
    ]
    try:
        return subprocess.run(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=900,
        )
    finally:
        engine.docker("image", "rm", f"{name}:prod", check=False)


def test_corrupt_zip_fails_the_build_with_one_line(engine, settings, zip_dir):
    (zip_dir / settings["ZIP_NAME"]).write_bytes(b"PK\x03\x04 this is not a zip " + secrets.token_bytes(64))
    name = f"it-{uuid.uuid4().hex[:8]}"
    done = compose_build(engine, settings, zip_dir, name)
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() if "unpack_zip:" in line and "corrupt" in line]
    assert lines, done.stdout[-3000:]
    assert engine.docker("image", "inspect", f"{name}:prod", check=False).returncode != 0


def test_zip_entry_outside_the_app_folder_fails_the_build(engine, settings, zip_dir):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manage.py", "print('hello')\n")
        archive.writestr("../evil", "escaped\n")
    (zip_dir / settings["ZIP_NAME"]).write_bytes(buffer.getvalue())
    name = f"it-{uuid.uuid4().hex[:8]}"
    done = compose_build(engine, settings, zip_dir, name)
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() if "unpack_zip:" in line and "../evil" in line]
    assert lines and "would land outside the app folder" in lines[-1], done.stdout[-3000:]


# ------------------------------------------------------------------------------------------ the prod image
@pytest.mark.parametrize("option", [(), ("-e", "DJANGO_SECRET_KEY=")], ids=["unset", "empty"])
def test_prod_image_without_secret_key_exits_with_one_line(engine, stack, option):
    code, output = docker_run(engine, f"{stack.name}:prod", *option)
    assert code != 0
    line = assert_one_line(output, "configuration error", "DJANGO_SECRET_KEY")
    assert line.count("configuration error") == 1


def test_prod_image_refuses_debug(engine, stack):
    code, output = docker_run(
        engine,
        f"{stack.name}:prod",
        "-e",
        "DJANGO_SECRET_KEY",
        "-e",
        "DJANGO_DEBUG=true",
        env={"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)},
    )
    assert code != 0
    assert_one_line(output, "configuration error", "DJANGO_DEBUG")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GUNICORN_WORKERS", "abc"), ("PORT", "99999"), ("DB_WAIT_TIMEOUT", "abc"), ("DB_PORT", "abc")],
)
def test_prod_image_rejects_malformed_numbers(engine, stack, variable, value):
    """With the database reachable (the stack's network), so the value is what stops the server."""
    env = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DB_PASSWORD": load_settings(ROOT).env.get("DB_PASSWORD", "app-dev-password"),
    }
    code, output = docker_run(
        engine,
        f"{stack.name}:prod",
        "--network",
        f"{stack.name}_default",
        "-e",
        "DB_HOST=db",
        "-e",
        "DJANGO_SECRET_KEY",
        "-e",
        "DB_PASSWORD",
        "-e",
        f"{variable}={value}",
        env=env,
        timeout=180,
    )
    assert code != 0
    assert_one_line(output, f"{variable}=", value)


@pytest.mark.parametrize(("variable", "value"), [("GUNICORN_WORKERS", "abc"), ("PORT", "99999")])
def test_malformed_gunicorn_number_is_reported_before_waiting_for_the_database(engine, stack, variable, value):
    code, output = docker_run(
        engine,
        f"{stack.name}:prod",
        "-e",
        "DJANGO_SECRET_KEY",
        "-e",
        "DB_HOST=no-such-db",
        "-e",
        "DB_WAIT_TIMEOUT=3",
        "-e",
        f"{variable}={value}",
        env={"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)},
    )
    assert code != 0
    assert_one_line(output, f"{variable}=", value)
