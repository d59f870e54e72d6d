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
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.helpers.checkout import PROD_RUN_OPTIONS, REPO_ROOT, IsolatedCheckout, copy_checkout
from tests.helpers.engine import unique_name
from tests.helpers.tools import assert_one_line, run_combined, run_tool

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def project(engine) -> Iterator[IsolatedCheckout]:
    """A fresh project that a test expects to stay empty; removed whatever happens."""
    fresh = IsolatedCheckout.new()
    try:
        yield fresh
    finally:
        fresh.remove()


def docker_run(engine, image: str, *options: str, env: Mapping[str, str] | None = None, timeout: float = 120):
    """`docker run` in the foreground (removed afterwards): (exit status, combined output)."""
    name = engine.unique_name("it-bad")
    try:
        done = run_combined(
            ["docker", "run", "--name", name, *PROD_RUN_OPTIONS, *options, image],
            env={**os.environ, **(env or {})},
            timeout=timeout,
        )
        return done.returncode, done.stdout
    finally:
        engine.docker("rm", "--force", "--volumes", name, check=False)


def run_prod_with_secret_key(
    engine, stack: IsolatedCheckout, *options: str, env: Mapping[str, str] | None = None, timeout: float = 120
):
    """docker_run of the stack's prod image with a fresh DJANGO_SECRET_KEY (passed through the environment)."""
    env = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), **(env or {})}
    return docker_run(engine, stack.image("prod"), "-e", "DJANGO_SECRET_KEY", *options, env=env, timeout=timeout)


def running_containers(engine, project: IsolatedCheckout) -> list[str]:
    """The ids of the project's running containers, sorted."""
    label = f"label=com.docker.compose.project={project.project}"
    return sorted(engine.docker("ps", "--quiet", "--filter", label).stdout.split())


# ------------------------------------------------------------------------------------------ the task suite
def test_unknown_stage(project):
    done = project.invoke_combined("build", "--stage", "nope")
    assert done.returncode != 0
    assert_one_line(done.stdout, "unknown stage 'nope'", "prod")


def test_app_port_not_a_number(project, engine):
    done = project.invoke_combined("up", "--stage", "prod", env={"APP_PORT": "abc"})
    assert done.returncode != 0
    assert_one_line(done.stdout, "APP_PORT='abc'")
    assert project.containers() == []


def test_prod_without_secret_key_is_refused_before_anything_starts(project, engine):
    done = project.invoke_combined("up", "--stage", "prod", env={"DJANGO_SECRET_KEY": ""})
    assert done.returncode != 0
    assert_one_line(done.stdout, "DJANGO_SECRET_KEY", "prod")
    assert project.containers() == []


def test_engine_not_running(project):
    done = project.invoke_combined(
        "up", "--stage", "prod", env={"DOCKER_HOST": "unix:///nonexistent.sock"}, timeout=120
    )
    assert done.returncode != 0
    assert_one_line(done.stdout, "engine is not reachable", "scripts/bootstrap")


def test_only_compose_v1(project, tmp_path, engine):
    hidden = {**os.environ, "DOCKER_CONFIG": str(tmp_path)}
    probe = subprocess.run(["docker", "compose", "version"], env=hidden, capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        pytest.skip("a system-wide Compose v2 plugin answers even with an empty DOCKER_CONFIG; cannot hide it")
    done = project.invoke_combined("up", "--stage", "prod", env={"DOCKER_CONFIG": str(tmp_path)}, timeout=120)
    assert done.returncode != 0
    assert_one_line(done.stdout, "docker compose is missing", "Compose v2")
    assert project.containers() == []


@pytest.mark.parametrize("setting", ["APP_PORT", "HTTPS_PORT"])
def test_port_in_use_is_named_and_nothing_starts(project, engine, setting):
    port = {"APP_PORT": project.port, "HTTPS_PORT": project.https_port}[setting]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = project.invoke_combined("up", "--stage", "prod")
    assert done.returncode != 0
    assert_one_line(done.stdout, f"127.0.0.1:{port}", setting, "already in use")
    assert project.containers() == []


def test_python_version_missing_from_base_image(project, settings):
    done = project.invoke_combined("build", "--stage", "prod", env={"PY_VERSION": "3.99"}, timeout=300)
    assert done.returncode != 0
    base = f"{settings['BASE_IMAGE']}:3.99-{settings['PY_BASE']}"
    assert_one_line(done.stdout, f"base image {base}", "PY_VERSION")


def test_env_file_syntax_error_names_the_line_and_keeps_the_file(tmp_path, engine):
    copy = copy_checkout(tmp_path / "checkout")
    original = (REPO_ROOT / ".env").read_bytes() if (REPO_ROOT / ".env").is_file() else b""
    if original and not original.endswith(b"\n"):
        original += b"\n"
    broken = original + b"this line is not an assignment\n"
    bad_line = broken.decode().count("\n")
    (copy / ".env").write_bytes(broken)
    name = unique_name("it")
    done = run_tool("invoke", "ps", cwd=copy, env={"PROJ_NAME": name, "COMPOSE_PROJECT_NAME": name}, timeout=120)
    assert done.returncode != 0
    assert_one_line(done.stdout, f".env line {bad_line}")
    assert (copy / ".env").read_bytes() == broken


def test_down_volumes_without_yes_and_without_a_terminal_is_refused(stack, engine):
    volume = stack.volume
    engine.docker("volume", "inspect", volume)
    running = running_containers(engine, stack)
    done = stack.invoke_combined("down", "--volumes")
    assert done.returncode != 0
    assert_one_line(done.stdout, "--yes", stack.project)
    assert engine.docker("volume", "inspect", volume, check=False).returncode == 0, "the volume was deleted"
    now = running_containers(engine, stack)
    assert now == running, "containers were stopped although the command was refused"


# ------------------------------------------------------------------------------------------ the code zip
@pytest.fixture
def zip_dir() -> Iterator[Path]:
    """A ZIP_DIR inside the checkout (the build context), removed afterwards."""
    folder = REPO_ROOT / f".it-zip-{uuid.uuid4().hex[:8]}"
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
        str(REPO_ROOT / "docker" / "compose.yaml"),
        "--profile",
        "prod",
        "build",
        "prod",
    ]
    try:
        return run_combined(argv, cwd=REPO_ROOT, env=env, timeout=900)
    finally:
        engine.docker("image", "rm", f"{name}:prod", check=False)


def test_corrupt_zip_fails_the_build_with_one_line(engine, settings, zip_dir):
    (zip_dir / settings["ZIP_NAME"]).write_bytes(b"PK\x03\x04 this is not a zip " + secrets.token_bytes(64))
    name = unique_name("it")
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
    name = unique_name("it")
    done = compose_build(engine, settings, zip_dir, name)
    assert done.returncode != 0
    lines = [line for line in done.stdout.splitlines() if "unpack_zip:" in line and "../evil" in line]
    assert lines and "would land outside the app folder" in lines[-1], done.stdout[-3000:]


# ------------------------------------------------------------------------------------------ the prod image
@pytest.mark.parametrize("option", [(), ("-e", "DJANGO_SECRET_KEY=")], ids=["unset", "empty"])
def test_prod_image_without_secret_key_exits_with_one_line(engine, stack, option):
    code, output = docker_run(engine, stack.image("prod"), *option)
    assert code != 0
    line = assert_one_line(output, "configuration error", "DJANGO_SECRET_KEY")
    assert line.count("configuration error") == 1


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "django-secret-key"
    path.write_text(secrets.token_urlsafe(50))
    path.chmod(0o644)  # the app runs as UID 10001
    return path


def test_prod_image_reads_the_secret_key_from_a_file(engine, stack, key_file):
    mount = ("-v", f"{key_file}:/run/secrets/key:ro", "-e", "DJANGO_SECRET_KEY_FILE=/run/secrets/key")
    code, output = docker_run(engine, stack.image("prod"), *mount, "-e", "DB_WAIT_TIMEOUT=1")
    assert code != 0  # no database here: it gets past the settings and stops at the wait
    assert_one_line(output, "not reachable after 1s")
    assert "configuration error" not in output


def test_prod_image_refuses_a_secret_key_and_its_file_both_set(engine, stack, key_file):
    mount = ("-v", f"{key_file}:/run/secrets/key:ro", "-e", "DJANGO_SECRET_KEY_FILE=/run/secrets/key")
    code, output = run_prod_with_secret_key(engine, stack, *mount)
    assert code != 0
    assert_one_line(output, "both DJANGO_SECRET_KEY and DJANGO_SECRET_KEY_FILE are set; set only one of them")


def test_prod_image_refuses_debug(engine, stack):
    code, output = run_prod_with_secret_key(engine, stack, "-e", "DJANGO_DEBUG=true")
    assert code != 0
    assert_one_line(output, "configuration error", "DJANGO_DEBUG")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GUNICORN_WORKERS", "abc"), ("PORT", "99999"), ("DB_WAIT_TIMEOUT", "abc"), ("DB_PORT", "abc")],
)
def test_prod_image_rejects_malformed_numbers(engine, stack, settings, variable, value):
    """With the database reachable (the stack's network), so the value is what stops the server."""
    code, output = run_prod_with_secret_key(
        engine,
        stack,
        "--network",
        f"{stack.project}_default",
        "-e",
        "DB_HOST=db",
        "-e",
        "DB_PASSWORD",
        "-e",
        f"{variable}={value}",
        env={"DB_PASSWORD": settings.env.get("DB_PASSWORD", "app-dev-password")},
        timeout=180,
    )
    assert code != 0
    assert_one_line(output, f"{variable}=", value)


@pytest.mark.parametrize(("variable", "value"), [("GUNICORN_WORKERS", "abc"), ("PORT", "99999")])
def test_malformed_gunicorn_number_is_reported_before_waiting_for_the_database(engine, stack, variable, value):
    code, output = run_prod_with_secret_key(
        engine, stack, "-e", "DB_HOST=no-such-db", "-e", "DB_WAIT_TIMEOUT=3", "-e", f"{variable}={value}"
    )
    assert code != 0
    assert_one_line(output, f"{variable}=", value)
