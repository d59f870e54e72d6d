"""The offline images on the real engine: made once and then found, and the DB image keeps the mysql contract.

The DB tests share one initialised volume (init is the slow part) and run in file order, pytest's default:
the last ones restart and stop the first container, then start a second one on the same volume.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from lifecycle.offline import (
    STEPS,
    build_images_argv,
    build_images_env,
    ensure_offline_images,
    offline_tags,
    suite_versions,
)
from lifecycle.runner import SubprocessRunner

pytestmark = pytest.mark.integration

# Quotes and backslashes prove the entrypoint escapes what it puts into SQL.
ROOT_PASSWORD = "root-pw'\\\"x"
DB_USER, DB_PASSWORD, DB_NAME = "app", "app pw'\\\"y", "appdb"
DB_ENV = {
    "MYSQL_ROOT_PASSWORD": ROOT_PASSWORD,
    "MYSQL_USER": DB_USER,
    "MYSQL_PASSWORD": DB_PASSWORD,
    "MYSQL_DATABASE": DB_NAME,
}
FAST_HEALTH = ["--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "120"]
STARTUP_TIMEOUT = 120

# One of each kind the entrypoint handles; each records itself, so a second init would show as a second row.
INIT_FILES = {
    "01-table.sql": ("CREATE TABLE init_runs (source VARCHAR(20) NOT NULL);\n", 0o644),
    "02-executed.sh": (
        '#!/bin/sh\nset -e\nMYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql -uroot "$MYSQL_DATABASE"'
        " -e \"INSERT INTO init_runs VALUES ('executed')\"\n",
        0o755,
    ),
    "03-sourced.sh": (
        'docker_process_sql --database="$MYSQL_DATABASE" <<<"INSERT INTO init_runs VALUES (\'sourced\')"\n',
        0o644,
    ),
    "04-row.sql": ("INSERT INTO init_runs VALUES ('sql');\n", 0o644),
}


@pytest.fixture(scope="module")
def tags(settings):
    return offline_tags(settings)


@pytest.fixture(scope="module")
def first_ensure(engine, settings):
    """The first call builds what is missing (everything on a fresh engine) or finds it all."""
    return ensure_offline_images(settings, SubprocessRunner())


def test_ensure_leaves_all_images_present(engine, first_ensure, tags):
    for tag in (tags.of(step) for step in STEPS):
        assert engine.docker("image", "inspect", tag, check=False).returncode == 0, f"{tag} missing after ensure"


def test_second_ensure_makes_nothing_and_is_quick(first_ensure, settings):
    started = time.monotonic()
    assert ensure_offline_images(settings, SubprocessRunner()) == []
    assert time.monotonic() - started < 15


def test_python_base_imports_ssl_and_venv(engine, first_ensure, tags, settings):
    python_version = suite_versions(settings["DEBIAN_SUITE"]).python
    done = engine.docker(
        "run", "--rm", tags.python, "python", "-c", "import ssl, sys, venv; print('%d.%d' % sys.version_info[:2])"
    )
    assert done.stdout.strip() == python_version


def test_python_base_has_no_compiler(engine, first_ensure, tags):
    done = engine.docker("run", "--rm", tags.python, "sh", "-c", "command -v gcc || command -v cc", check=False)
    assert done.returncode != 0, f"compiler found: {done.stdout.strip()}"


def test_python_base_defaults_match_official_image(engine, first_ensure, tags):
    config = engine.docker("image", "inspect", "--format", "{{json .Config.Cmd}} {{json .Config.Env}}", tags.python)
    assert config.stdout.startswith('["python3"] ')
    assert "LANG=C.UTF-8" in config.stdout
    assert "PYTHONUNBUFFERED=1" in config.stdout


# What a project expects of the official python image's standard library: Debian splits some of it into packages.
OFFICIAL_STDLIB = (
    *("dbm.gnu", "dbm.ndbm", "curses", "readline", "sqlite3", "ssl"),
    *("lzma", "bz2", "zlib", "ctypes", "venv"),
)


@pytest.fixture(scope="module")
def python_image(engine, settings, tags) -> str:
    """The offline python image alone, made when missing or stale (first_ensure makes the others too)."""
    ensure_offline_images(settings, SubprocessRunner(), wanted=("python",))
    return tags.python


def test_python_base_is_a_drop_in_for_the_official_image(engine, python_image):
    """The whole standard library each module imported, with its C part (dbm.gnu is _gdbm, curses _curses, ...),
    and pip as the official image has it: on PATH, able to install (no EXTERNALLY-MANAGED marker)."""
    imports = "; ".join(f"import {module}" for module in OFFICIAL_STDLIB)
    check = (
        f"{imports}; import sqlite3, sysconfig, pathlib, ctypes.util; sqlite3.connect(':memory:').execute('select 1'); "
        "dbm.gnu.open('/tmp/g', 'c').close(); dbm.ndbm.open('/tmp/n', 'c').close(); "
        "marker = pathlib.Path(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'); "
        "print('marker' if marker.exists() else 'no marker')"
    )
    done = engine.docker("run", "--rm", python_image, "python", "-c", check, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "no marker"), done.stderr
    both = "pip --version && python -m pip --version"
    pip = engine.docker("run", "--rm", python_image, "sh", "-c", both, check=False)
    assert pip.returncode == 0, pip.stderr
    assert [line.split()[0] for line in pip.stdout.splitlines()] == ["pip", "pip"]


# --- the DB image -------------------------------------------------------------------------------------------------


def client_env(password: str) -> dict[str, str]:
    return {**os.environ, "MYSQL_PWD": password}


def query_as_user(engine, container: str, statement: str, check: bool = True):
    """Run SQL as MYSQL_USER over TCP inside the container; the password travels as MYSQL_PWD, not in argv."""
    return engine.docker(
        "exec",
        "-e",
        "MYSQL_PWD",
        container,
        "mysql",
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-u",
        DB_USER,
        "--batch",
        "--skip-column-names",
        "-e",
        statement,
        DB_NAME,
        check=check,
        env=client_env(DB_PASSWORD),
    )


def user_login_works(engine, container: str) -> bool:
    done = query_as_user(engine, container, "SELECT 1", check=False)
    return done.returncode == 0 and done.stdout.strip() == "1"


def health_of(engine, container: str) -> str:
    return engine.docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


def wait_healthy(engine, container: str) -> list[str]:
    """Poll health until healthy; every `healthy` must coincide with a working login and a finished init.

    Returns every status observed, in order.
    """
    observed: list[str] = []

    def probe() -> bool:
        status = health_of(engine, container)
        observed.append(status)
        logs = engine.docker("logs", container).stderr  # read after the status, so it is at least as new
        if status == "healthy":
            assert user_login_works(engine, container), "healthy, but the MYSQL_USER login over TCP fails"
            assert "Entrypoint]: init complete" in logs or "skipping init" in logs, "healthy before init completed"
            return True
        assert status == "starting", f"health is {status!r}; container log:\n{logs[-3000:]}"
        return False

    engine.wait_for(probe, STARTUP_TIMEOUT, f"{container} to become healthy", interval=0.2)
    return observed


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("initdb")
    for name, (text, mode) in INIT_FILES.items():
        (folder / name).write_text(text)
        (folder / name).chmod(mode)
    return folder


@pytest.fixture(scope="module")
def db_volume(engine, first_ensure):
    with engine.docker_volume("it-offline-db") as volume:
        yield volume


@contextmanager
def db_container(engine, image: str, volume: str, init_dir: Path):
    def copy_init_files(name: str) -> None:
        engine.docker("cp", f"{init_dir}/.", f"{name}:/docker-entrypoint-initdb.d/")

    env_options = [option for name in DB_ENV for option in ("-e", name)]
    with engine.docker_container(
        image,
        "-v",
        f"{volume}:/var/lib/mysql",
        "-p",
        "127.0.0.1::3306",
        *env_options,
        *FAST_HEALTH,
        prefix="it-offline-db",
        env={**os.environ, **DB_ENV},
        before_start=copy_init_files,
    ) as name:
        yield name


@pytest.fixture(scope="module")
def first_db(engine, tags, db_volume, init_dir):
    """A container on an empty volume, polled from its start until healthy."""
    with db_container(engine, tags.db, db_volume, init_dir) as name:
        yield name, wait_healthy(engine, name)


def test_db_is_starting_until_init_is_done(first_db):
    _, observed = first_db
    assert observed[0] == "starting"
    assert observed[-1] == "healthy"


def test_db_user_logs_in_over_tcp_to_database(engine, first_db):
    name, _ = first_db
    assert query_as_user(engine, name, "SELECT DATABASE(), CURRENT_USER()").stdout.split() == [DB_NAME, f"{DB_USER}@%"]


def test_db_runs_as_mysql_with_mariadbd_as_pid_1(engine, first_db):
    name, _ = first_db
    assert engine.docker("exec", name, "id", "-u").stdout.strip() == "999"
    assert engine.docker("exec", name, "cat", "/proc/1/comm").stdout.strip() == "mariadbd"


def test_db_root_password_works_and_is_required(engine, first_db):
    name, _ = first_db
    login = ["exec", "-e", "MYSQL_PWD", name, "mysql", "-uroot", "-N", "-e", "SELECT 1"]
    assert engine.docker(*login, env=client_env(ROOT_PASSWORD)).stdout.strip() == "1"
    assert engine.docker(*login, env=client_env("wrong"), check=False).returncode != 0


def test_db_init_files_each_ran_once(engine, first_db):
    name, _ = first_db
    rows = query_as_user(engine, name, "SELECT source FROM init_runs ORDER BY source").stdout.split()
    assert rows == ["executed", "sourced", "sql"]


def test_db_row_survives_restart(engine, first_db):
    name, _ = first_db
    query_as_user(engine, name, "CREATE TABLE kept (note VARCHAR(20)); INSERT INTO kept VALUES ('before-restart')")
    engine.docker("restart", name)
    wait_healthy(engine, name)
    assert query_as_user(engine, name, "SELECT note FROM kept").stdout.strip() == "before-restart"


def test_db_stops_cleanly_on_sigterm(engine, first_db):
    name, _ = first_db
    started = time.monotonic()
    engine.docker("stop", "--time", "30", name)
    assert time.monotonic() - started < 10, "SIGTERM did not stop mariadbd promptly"
    assert engine.docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"


def test_second_container_on_same_volume_skips_init(engine, tags, first_db, db_volume, init_dir):
    first, _ = first_db
    engine.docker("stop", first)  # one server per data directory
    with db_container(engine, tags.db, db_volume, init_dir) as second:
        wait_healthy(engine, second)
        assert "skipping init" in engine.docker("logs", second).stderr
        rows = query_as_user(engine, second, "SELECT source FROM init_runs ORDER BY source").stdout.split()
        assert rows == ["executed", "sourced", "sql"], "init ran again on an initialised volume"
        assert query_as_user(engine, second, "SELECT note FROM kept").stdout.strip() == "before-restart"


# --- the *_FILE rule, on a DB image built from this checkout (the shared tag may predate its scripts) ---------------


@pytest.fixture(scope="module")
def checkout_db_image(engine, first_ensure, settings):
    tag = f"{engine.unique_name('it-offline-mariadb')}:test"
    env = {**build_images_env(settings), "OFFLINE_DB_IMAGE": tag}
    SubprocessRunner()(build_images_argv(settings, ["db"]), env=env)
    try:
        yield tag
    finally:
        engine.docker("image", "rm", "--force", tag, check=False)


@pytest.fixture
def password_file(tmp_path) -> Path:
    path = tmp_path / "password"
    path.write_text(DB_PASSWORD)
    path.chmod(0o644)  # mariadbd's entrypoint runs as mysql (999)
    return path


def test_db_refuses_a_variable_and_its_file_both_set(engine, checkout_db_image, password_file):
    name = engine.unique_name("it-offline-both")
    both = ["-e", "MYSQL_PASSWORD", "-e", "MYSQL_PASSWORD_FILE=/run/secrets/password"]
    try:
        done = engine.docker(
            "run", "--name", name, "-e", "MYSQL_ROOT_PASSWORD", "-e", "MYSQL_USER", *both,
            "-v", f"{password_file}:/run/secrets/password:ro", checkout_db_image,
            env={**os.environ, **DB_ENV}, check=False,
        )  # fmt: skip
    finally:
        engine.docker("rm", "--force", "--volumes", name, check=False)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("both MYSQL_PASSWORD and MYSQL_PASSWORD_FILE are set; set only one of them")
    )


def test_db_reads_the_password_file_in_the_entrypoint_and_the_health_check(engine, checkout_db_image, password_file):
    env_options = ["-e", "MYSQL_ROOT_PASSWORD", "-e", "MYSQL_USER", "-e", "MYSQL_DATABASE"]
    with engine.docker_container(
        checkout_db_image, *env_options, "-e", "MYSQL_PASSWORD_FILE=/run/secrets/password",
        "-v", f"{password_file}:/run/secrets/password:ro", prefix="it-offline-file", env={**os.environ, **DB_ENV},
    ) as name:  # fmt: skip

        def healthy() -> bool:
            return engine.docker("exec", name, "mariadb-healthcheck.sh", check=False).returncode == 0

        engine.wait_for(healthy, STARTUP_TIMEOUT, f"{name}'s health check to pass with MYSQL_PASSWORD_FILE")
        assert user_login_works(engine, name)
