"""lifecycle.doctor: each check decides from one plain fact; preflight turns a failure into one line."""

from __future__ import annotations

import pytest

from lifecycle import doctor, offline
from lifecycle.doctor import (
    BOOTSTRAP_FIX,
    Check,
    compose_check,
    crlf_check,
    crlf_files,
    disk_check,
    engine_check,
    images_check,
    port_check,
    preflight,
)
from lifecycle.errors import UserError
from lifecycle.runner import Result
from tests.helpers.recording import RecordingRunner

GIB = 2**30
VERSION = ("docker", "version", "--format", "{{.Server.Version}}")
COMPOSE_VERSION = ("docker", "compose", "version", "--short")


@pytest.mark.parametrize(
    ("output", "ok", "detail"),
    [
        pytest.param(None, False, "docker compose is missing (only the old docker-compose v1, or nothing)",
                     id="a failed command means compose is missing"),
        pytest.param("", False, "docker compose is missing (only the old docker-compose v1, or nothing)",
                     id="empty output means compose is missing"),
        pytest.param("1.29.2", False, "found Compose 1.29.2", id="compose v1 is refused"),
        pytest.param("2.40.3", True, "2.40.3", id="compose 2.40.3 passes"),
        pytest.param("v2.5.0", True, "2.5.0", id="a leading v is dropped"),
        pytest.param("2.40.3\n", True, "2.40.3", id="the trailing newline is dropped"),
        pytest.param("5.0.0", True, "5.0.0", id="a later major version passes"),
        pytest.param("dev", False, "found Compose dev", id="an unparsable version is refused"),
    ],
)  # fmt: skip
def test_compose_check(output, ok, detail):
    check = compose_check(output)
    assert (check.name, check.ok, check.detail) == ("compose v2", ok, detail)
    assert check.fix == ("" if ok else "install the Compose v2 plugin: " + BOOTSTRAP_FIX)


@pytest.mark.parametrize(
    ("server_version", "expected"),
    [
        pytest.param(None, Check("engine", False, "the Docker engine is not reachable (docker version failed)",
                                 BOOTSTRAP_FIX), id="no answer means the engine is unreachable"),
        pytest.param("", Check("engine", False, "the Docker engine is not reachable (docker version failed)",
                               BOOTSTRAP_FIX), id="an empty answer means the engine is unreachable"),
        pytest.param("28.1.1\n", Check("engine", True, "Docker Engine 28.1.1"), id="a version means it answers"),
    ],
)  # fmt: skip
def test_engine_check(server_version, expected):
    assert engine_check(server_version) == expected


@pytest.mark.parametrize(
    ("free_bytes", "ok", "detail"),
    [
        pytest.param(100 * GIB, True, "100.0 GiB free in /var/lib/docker", id="plenty of space passes"),
        pytest.param(5 * GIB, True, "5.0 GiB free in /var/lib/docker", id="exactly five GiB passes"),
        pytest.param(5 * GIB - 2**20, False, "5.0 GiB free in /var/lib/docker", id="just under five GiB fails"),
        pytest.param(GIB // 2, False, "0.5 GiB free in /var/lib/docker", id="half a GiB fails"),
    ],
)
def test_disk_check(free_bytes, ok, detail):
    check = disk_check(free_bytes, "/var/lib/docker")
    assert (check.name, check.ok, check.detail) == ("disk", ok, detail)
    assert check.fix == "free at least 5 GiB (docker system df; invoke clean)"


@pytest.mark.parametrize(
    ("free", "ok", "detail"),
    [
        pytest.param(True, True, "127.0.0.1:8000 free", id="a free port passes"),
        pytest.param(False, False, "127.0.0.1:8000 in use", id="a used port fails"),
    ],
)
def test_port_check(free, ok, detail):
    check = port_check(8000, free)
    assert (check.name, check.ok, check.detail) == ("APP_PORT", ok, detail)
    assert check.fix == "stop what listens on 8000 (ss -ltnp 'sport = :8000') or set APP_PORT in .env"


def test_port_check_names_the_setting_to_change():
    check = port_check(8443, False, name="HTTPS_PORT")
    assert check.line() == (
        "FAIL HTTPS_PORT: 127.0.0.1:8443 in use -> stop what listens on 8443 (ss -ltnp 'sport = :8443') "
        "or set HTTPS_PORT in .env"
    )


@pytest.mark.parametrize(
    ("present", "registry_ok", "expected"),
    [
        pytest.param({"python:3.12-slim": True, "mysql:8.4": True}, False,
                     Check("base images", True, "present: python:3.12-slim, mysql:8.4"),
                     id="all present passes without a registry"),
        pytest.param({"python:3.12-slim": False, "mysql:8.4": True}, True,
                     Check("base images", True, "python:3.12-slim will be pulled (registry reachable)"),
                     id="missing with a registry passes"),
        pytest.param({"python:3.12-slim": False, "mysql:8.4": False}, False,
                     Check("base images", False, "missing and no registry: python:3.12-slim, mysql:8.4",
                           "run invoke images.offline (builds it from Debian packages) or scripts/bootstrap"),
                     id="missing without a registry fails and points at images.offline"),
    ],
)  # fmt: skip
def test_images_check(present, registry_ok, expected):
    assert (
        images_check(
            present, registry_ok, "run invoke images.offline (builds it from Debian packages) or scripts/bootstrap"
        )
        == expected
    )


def test_crlf_files_finds_only_crlf_scripts_in_the_script_folders(tmp_path):
    files = {
        "scripts/bootstrap": b"#!/bin/sh\r\necho hi\r\n",
        "scripts/lf": b"#!/bin/sh\necho hi\n",
        "bash_files/entrypoint.sh": b'#!/bin/sh\nexec "$@"\n',
        "bash_files/qa.sh": b"#!/bin/sh\r\n",
        ".ci/run": b"#!/bin/sh\n",
        "docker/db-init/init.sh": b"echo\r\n",
        "docker/top.sh": b"echo\r\n",
        "docker/Dockerfile": b"FROM x\r\n",  # not a shell script
        "django_site/run.sh": b"echo\r\n",  # not in a script folder
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "scripts" / "sub").mkdir()  # folders are skipped
    assert crlf_files(tmp_path) == ["bash_files/qa.sh", "docker/db-init/init.sh", "docker/top.sh", "scripts/bootstrap"]


def test_crlf_files_on_an_empty_tree(tmp_path):
    assert crlf_files(tmp_path) == []


def test_crlf_check():
    assert crlf_check([]) == Check("line endings", True, "shell scripts use LF")
    failed = crlf_check(["scripts/a", "scripts/b"])
    assert (failed.ok, failed.detail) == (False, "CRLF in scripts/a, scripts/b")
    assert "eol=lf" in failed.fix


@pytest.mark.parametrize(
    ("check", "line"),
    [
        pytest.param(Check("engine", True, "Docker Engine 28.1.1"), "ok   engine: Docker Engine 28.1.1",
                     id="a passing check shows ok and no fix"),
        pytest.param(Check("engine", True, "fine", "never shown"), "ok   engine: fine",
                     id="a passing check hides its fix"),
        pytest.param(Check("port", False, "127.0.0.1:80 in use", "set APP_PORT"),
                     "FAIL port: 127.0.0.1:80 in use -> set APP_PORT", id="a failing check shows its fix"),
    ],
)  # fmt: skip
def test_check_line(check, line):
    assert check.line() == line


# ---------------------------------------------------------------------------------------------- preflight


def test_preflight_passes_when_engine_and_compose_answer():
    run = RecordingRunner({VERSION: Result(0, "28.1.1\n"), COMPOSE_VERSION: Result(0, "2.40.3\n")})
    preflight(run)
    assert run.calls == [list(VERSION), list(COMPOSE_VERSION)]


def test_preflight_refuses_when_the_engine_is_down():
    run = RecordingRunner({VERSION: Result(1, ""), COMPOSE_VERSION: Result(0, "2.40.3\n")})
    with pytest.raises(UserError) as error:
        preflight(run)
    assert str(error.value) == f"the Docker engine is not reachable (docker version failed); {BOOTSTRAP_FIX}"
    assert run.calls == [list(VERSION), list(COMPOSE_VERSION)]  # only the two read-only probes ran


def test_preflight_refuses_compose_v1():
    run = RecordingRunner({VERSION: Result(0, "28.1.1\n"), COMPOSE_VERSION: Result(0, "1.29.2\n")})
    with pytest.raises(UserError) as error:
        preflight(run)
    assert str(error.value) == f"found Compose 1.29.2; install the Compose v2 plugin: {BOOTSTRAP_FIX}"
    assert "\n" not in str(error.value)


def test_preflight_refuses_missing_compose():
    run = RecordingRunner({VERSION: Result(0, "28.1.1\n"), COMPOSE_VERSION: Result(1, "")})
    with pytest.raises(UserError, match=r"^docker compose is missing .*; install the Compose v2 plugin"):
        preflight(run)


# --------------------------------------------------------------------------------------------- checks()


def test_checks_with_the_engine_down_skip_the_engine_checks(make_settings, monkeypatch):
    monkeypatch.setattr(doctor, "port_is_free", lambda port: True)
    run = RecordingRunner({VERSION: Result(1), COMPOSE_VERSION: Result(0, "2.40.3")})
    found = doctor.checks(make_settings(), run)
    assert [(c.name, c.ok) for c in found] == [
        ("engine", False),
        ("compose v2", True),
        ("APP_PORT", True),
        ("HTTPS_PORT", True),
        ("DEBUG_PORT", True),
        ("REGISTRY_PORT", True),
        ("line endings", True),
    ]
    assert run.calls == [list(VERSION), list(COMPOSE_VERSION)]


def test_report_counts_failures_and_prints_one_line_each(make_settings, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "port_is_free", lambda port: False)
    run = RecordingRunner({VERSION: Result(1), COMPOSE_VERSION: Result(1)})
    assert doctor.report(make_settings(), run) == 6
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["FAIL"] * 6 + ["ok"]


@pytest.mark.parametrize(
    ("works", "ok", "detail"),
    [
        pytest.param(True, True, "cache mounts work through compose", id="cache mounts work"),
        pytest.param(False, False, "compose build with a cache mount failed", id="cache mounts fail"),
        pytest.param(None, True, "skipped (base image not present yet)", id="not probed without a base image"),
    ],
)
def test_buildkit_check(works, ok, detail):
    check = doctor.buildkit_check(works)
    assert (check.ok, check.detail) == (ok, detail)


@pytest.mark.parametrize(
    ("environ", "fix"),
    [
        pytest.param(
            {"BASE_IMAGE": "lifecycle/python", "PY_VERSION": "3.12", "PY_BASE": "trixie"},
            "without a registry only Python 3.13 can be built (offline images): set PY_VERSION=3.13 in .env and run "
            "invoke images.offline, or reach a registry that has lifecycle/python:3.12-trixie",
            id="a Python the offline images do not have: the version that works",
        ),
        pytest.param(
            {"PY_VERSION": "3.12", "DEBIAN_SUITE": "bookworm"},
            "without a registry only Python 3.11 can be built",
            id="the offline Python follows DEBIAN_SUITE",
        ),
        pytest.param(
            {"BASE_IMAGE": "lifecycle/python", "PY_VERSION": "3.13", "PY_BASE": "trixie"},
            "run invoke images.offline (builds it from Debian packages) or scripts/bootstrap",
            id="the offline Python: build it",
        ),
    ],
)
def test_base_image_fix_names_what_works(make_settings, environ, fix):
    assert offline.base_image_fix(make_settings(**environ)).startswith(fix)


PORT_SETTINGS = {"APP_PORT": "8123", "HTTPS_PORT": "8124", "DEBUG_PORT": "8125", "REGISTRY_PORT": "8126"}


def port_checks(found: list[Check]) -> list[tuple[str, bool, str]]:
    return [(check.name, check.ok, check.detail) for check in found if check.name.endswith("PORT")]


def test_every_published_port_held_by_this_checkouts_stacks_passes(make_settings, monkeypatch):
    """The site and the proxy belong to the checkout's compose project, the registry to PROJECT-registry."""
    monkeypatch.setattr(doctor, "port_is_free", lambda port: False)
    settings = make_settings(**PORT_SETTINGS)
    ps = ("docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={settings.project_name}")
    registry_ps = (*ps[:-1], f"{ps[-1]}-registry")
    run = RecordingRunner(
        {VERSION: Result(0, "20.10.24"), registry_ps: Result(0, "4567cdef\n"), ps: Result(0, "0123abcd\n")}
    )
    assert port_checks(doctor.checks(settings, run)) == [
        (name, True, f"127.0.0.1:{port} in use by this checkout's stack") for name, port in PORT_SETTINGS.items()
    ]
    for port in ("8123", "8124", "8125"):
        assert [*ps, "--filter", f"publish={port}"] in run.calls
    assert [*registry_ps, "--filter", "publish=8126"] in run.calls


def test_every_published_port_held_by_something_else_fails(make_settings, monkeypatch):
    monkeypatch.setattr(doctor, "port_is_free", lambda port: port == 8124)
    run = RecordingRunner({VERSION: Result(0, "20.10.24")})  # docker ps lists nothing of this project
    assert port_checks(doctor.checks(make_settings(**PORT_SETTINGS), run)) == [
        ("APP_PORT", False, "127.0.0.1:8123 in use"),
        ("HTTPS_PORT", True, "127.0.0.1:8124 free"),
        ("DEBUG_PORT", False, "127.0.0.1:8125 in use"),
        ("REGISTRY_PORT", False, "127.0.0.1:8126 in use"),
    ]


def test_registry_port_is_not_checked_when_releases_go_elsewhere(make_settings, monkeypatch):
    monkeypatch.setattr(doctor, "port_is_free", lambda port: True)
    run = RecordingRunner({VERSION: Result(1)})
    found = doctor.checks(make_settings(REGISTRY="registry.example.com/team"), run)
    assert [name for name, _, _ in port_checks(found)] == ["APP_PORT", "HTTPS_PORT", "DEBUG_PORT"]


@pytest.mark.parametrize(
    ("environ", "detail"),
    [
        pytest.param({"HTTPS_PORT": "8000"}, "APP_PORT and HTTPS_PORT are both 8000", id="site and proxy"),
        pytest.param({"REGISTRY_PORT": "5678"}, "DEBUG_PORT and REGISTRY_PORT are both 5678", id="debug and registry"),
    ],
)
def test_two_settings_naming_one_port_fail(make_settings, monkeypatch, environ, detail):
    monkeypatch.setattr(doctor, "port_is_free", lambda port: True)
    found = doctor.checks(make_settings(**environ), RecordingRunner({VERSION: Result(1)}))
    assert [(c.ok, c.detail) for c in found if c.name == "ports"] == [(False, detail)]


def test_port_held_by_this_checkouts_stack_passes(make_settings, monkeypatch):
    monkeypatch.setattr(doctor, "port_is_free", lambda port: False)
    settings = make_settings(APP_PORT="8123")
    ps = ("docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={settings.project_name}")
    run = RecordingRunner({VERSION: Result(0, "20.10.24"), ps: Result(0, "0123abcd\n")})
    port = [check for check in doctor.checks(settings, run) if check.name == "APP_PORT"]
    assert port == [Check("APP_PORT", True, "127.0.0.1:8123 in use by this checkout's stack")]
    assert [*ps, "--filter", "publish=8123"] in run.calls


def test_port_held_by_something_else_fails(make_settings, monkeypatch):
    monkeypatch.setattr(doctor, "port_is_free", lambda port: False)
    run = RecordingRunner({VERSION: Result(0, "20.10.24")})  # docker ps lists nothing of this project
    port = [check for check in doctor.checks(make_settings(APP_PORT="8123"), run) if check.name == "APP_PORT"]
    assert [(check.ok, check.detail) for check in port] == [(False, "127.0.0.1:8123 in use")]
