"""What a daily user runs, with the real engine: an admin made through `manage --env` logs in; `shell` and the
tasks behave without a terminal and with stdin closed; each checkout builds, runs and cleans images of its own; a
changed DB_PASSWORD is named at once; health checks stay out of the access log; doctor accepts our own port."""

from __future__ import annotations

import http.client
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.checkout import HTTPS_PROXY_HEADERS, IsolatedCheckout, copy_checkout, project_up
from tests.helpers.engine import docker, free_port, random_secret, unique_name
from tests.helpers.tools import (
    UP_TIMEOUT,
    assert_one_line,
    interrupt_when_running,
    invoke_argv,
    run_combined,
    run_tool,
    strip_ansi,
    tool_env,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(engine) -> Iterator[IsolatedCheckout]:
    with project_up("prod") as project:
        yield project


def request(port: int, method: str, path: str, headers: dict[str, str], body: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    found = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            found[key] = rest.split(";", 1)[0]
    return found


def admin_login(port: int, username: str, password: str) -> bool:
    """Log in through /admin/login/ as a browser behind the TLS proxy does; True when Django opens a session."""
    origin = f"https://127.0.0.1:{port}"
    base = {**HTTPS_PROXY_HEADERS, "Host": f"127.0.0.1:{port}"}
    status, headers, page = request(port, "GET", "/admin/login/", base)
    assert status == 200, page[-2000:]
    csrf_cookie = cookies(headers)["csrftoken"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"}
    )
    status, headers, page = request(
        port,
        "POST",
        "/admin/login/",
        {**base, "Origin": origin, "Referer": f"{origin}/admin/login/", "Cookie": f"csrftoken={csrf_cookie}",
         "Content-Type": "application/x-www-form-urlencoded"},
        form,
    )  # fmt: skip
    return status == 302 and "sessionid" in cookies(headers)


def test_an_admin_made_with_manage_env_logs_in_and_its_password_is_never_shown(stack):
    password = random_secret(20)
    done = stack.invoke_combined(
        "manage", "createsuperuser --noinput", "--stage", "prod",
        "--env", "DJANGO_SUPERUSER_USERNAME=admin", "--env", "DJANGO_SUPERUSER_EMAIL=admin@example.com",
        "--env", "DJANGO_SUPERUSER_PASSWORD",
        env={"DJANGO_SUPERUSER_PASSWORD": password},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert password not in done.stdout
    assert admin_login(stack.port, "admin", password)
    assert not admin_login(stack.port, "admin", password + "x")


def test_shell_without_a_terminal_refuses_or_runs_the_command(stack):
    refused = stack.invoke_combined("shell", "--stage", "prod")
    assert refused.returncode == 1
    assert_one_line(refused.stdout, "needs a terminal", "--command")
    done = stack.invoke_combined(
        "shell", "--stage", "prod", "--command", 'echo "$APP_STAGE:$GREETING"; exit 7', "--env", "GREETING=hi"
    )
    assert done.returncode == 7, done.stdout[-3000:]
    assert "prod:hi" in done.stdout


# How a script hands db.shell its stdin: SQL piped in, or nothing to read.
DB_SHELL_STDIN = {
    "pipe": 'printf "%s\\n" "$SQL" | "$@"',
    "stdin closed": 'exec "$@" <&-',
    "stdin from /dev/null": 'exec "$@" </dev/null',
    "an empty pipe": 'true | "$@"',
}


def db_shell(stack: IsolatedCheckout, stdin: str, *args: str, sql: str = "") -> subprocess.CompletedProcess[str]:
    argv = ["bash", "-c", DB_SHELL_STDIN[stdin], "_", *invoke_argv(), "db.shell", *args]
    return run_combined(argv, env={**stack.env, "SQL": sql}, cwd=stack.root, timeout=120)  # it hung before


@pytest.mark.parametrize(
    ("args", "sql", "status", "shown", "hidden"),
    [
        pytest.param((), "SELECT CONCAT('an', 'swer'); SELECT CURRENT_USER();", 0, "answer", "root@",
                     id="piped SQL runs as the app user"),
        pytest.param(("--root",), "SELECT CURRENT_USER();", 0, "root@", "ERROR", id="piped SQL runs as root"),
        pytest.param((), "SELECT * FROM no_such_table;", 1, "ERROR 1146", "Traceback",
                     id="the client's exit status is the task's"),
    ],
)  # fmt: skip
def test_db_shell_without_a_terminal_runs_the_sql_piped_in(stack, args, sql, status, shown, hidden):
    done = db_shell(stack, "pipe", *args, sql=sql)
    assert done.returncode == status, done.stdout[-3000:]
    assert shown in done.stdout and hidden not in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize("stdin", ["stdin closed", "stdin from /dev/null", "an empty pipe"])
@pytest.mark.parametrize("args", [(), ("--root",)], ids=["app user", "root"])
def test_db_shell_with_nothing_to_read_refuses_in_one_line(stack, stdin, args):
    refused = db_shell(stack, stdin, *args)
    assert refused.returncode == 1, refused.stdout[-3000:]
    assert_one_line(refused.stdout, "invoke db.shell has no terminal and nothing piped in", "nothing was run")
    assert "isatty" not in refused.stdout


def test_health_checks_stay_out_of_the_access_log_and_other_health_calls_stay_in(engine, stack):
    status, _, _ = request(stack.port, "GET", "/health", {"User-Agent": "daily-use-probe"})
    assert status == 200

    def health_lines() -> list[str]:
        logs = docker("logs", stack.container("prod"))
        return [line for line in (logs.stdout + logs.stderr).splitlines() if "GET /health" in line]

    # Ours is written once the response is sent; compose and the proxy ran several health checks before
    # `up` returned, and more ran since.
    engine.wait_for(lambda: any("daily-use-probe" in line for line in health_lines()), timeout=30, what="our line")
    assert len(health_lines()) == 1, health_lines()[-5:]


def test_doctor_accepts_the_port_this_checkouts_stack_holds(stack):
    done = stack.invoke_combined("doctor")
    out = strip_ansi(done.stdout)
    assert f"ok   APP_PORT: 127.0.0.1:{stack.port} in use by this checkout's stack" in out, done.stdout


@pytest.mark.parametrize("stdin", ["closed", "/dev/null"])
def test_down_and_clean_work_with_stdin_closed_or_redirected(engine, stdin, tmp_path):
    # In a copy: `clean` removes the checkout's zip, reports and staged certificates, which other modules build from.
    checkout = IsolatedCheckout.new(root=copy_checkout(tmp_path / "checkout"))
    redirect = "<&-" if stdin == "closed" else "</dev/null"
    try:
        for task in ("down", "clean"):
            argv = ["bash", "-c", f'exec "$@" {redirect}', "_", *invoke_argv(), task]
            done = run_combined(argv, env=checkout.env, cwd=checkout.root, timeout=300)
            assert done.returncode == 0, done.stdout[-3000:]
            assert "Traceback" not in done.stdout and "isatty" not in done.stdout
        argv = ["bash", "-c", f'exec "$@" {redirect}', "_", *invoke_argv(), "down", "--volumes"]
        refused = run_combined(argv, env=checkout.env, cwd=checkout.root, timeout=300)
        assert refused.returncode == 1
        assert_one_line(refused.stdout, "add --yes to confirm (nothing was changed)")
    finally:
        checkout.remove()


def test_a_changed_db_password_is_named_at_once_with_the_two_ways_out(engine):
    checkout = IsolatedCheckout.new(db_password=random_secret(24), db_root_password=random_secret(24))
    try:
        first = checkout.invoke_combined("up", "--stage", "prod", timeout=UP_TIMEOUT)
        assert first.returncode == 0, first.stdout[-3000:]
        assert checkout.invoke("down").returncode == 0
        changed = checkout.invoke_combined(
            "up", "--stage", "prod", "--no-build", "--wait-timeout", "400",
            env={"DB_PASSWORD": random_secret(24)}, timeout=UP_TIMEOUT,
        )  # fmt: skip
        assert changed.returncode == 1, changed.stdout[-3000:]
        assert_one_line(changed.stdout, "Access denied", "DB_PASSWORD", "put the old value back", "down --volumes")
        assert checkout.volume_exists()  # nothing was deleted
    finally:
        checkout.remove()


# ------------------------------------------------------------------------------------- two clones, one name


@contextmanager
def clones(tmp_path: Path, proj_name: str) -> Iterator[tuple[Path, Path]]:
    """Two copies of the checkout that share PROJ_NAME, each with its own compose project (so image names)."""
    roots = (copy_checkout(tmp_path / "one"), copy_checkout(tmp_path / "two"))
    try:
        yield roots
    finally:
        for root in roots:
            in_clone(root, proj_name, "down", "--volumes", "--yes")
            in_clone(root, proj_name, "clean")


def in_clone(root: Path, proj_name: str, *args: str) -> subprocess.CompletedProcess[str]:
    ports = {name: str(free_port()) for name in ("APP_PORT", "HTTPS_PORT", "REGISTRY_PORT")}
    env = {"PROJ_NAME": proj_name, **ports, "DJANGO_SECRET_KEY": random_secret()}
    return run_tool("invoke", *args, env=env, cwd=root, drop=("COMPOSE_PROJECT_NAME",), timeout=1800)


def image_id(image: str) -> str | None:
    done = docker("image", "inspect", "--format", "{{.Id}}", image, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def test_two_clones_with_one_proj_name_build_run_and_clean_only_images_of_their_own(engine, tmp_path):
    """Issue 24: both clones tagged `PROJ_NAME:prod`, and `up` in one re-pointed the other's. Each clone's images are
    now named after its compose project (PROJ_NAME plus a hash of its path)."""
    from lifecycle.settings import default_project_name

    proj_name = unique_name("it")
    with clones(tmp_path, proj_name) as (one, two):
        project_one, project_two = default_project_name(proj_name, one), default_project_name(proj_name, two)
        built = in_clone(one, proj_name, "build", "--stage", "prod")
        assert built.returncode == 0, built.stdout[-3000:]
        ones = {stage: image_id(f"{project_one}:{stage}") for stage in ("prod", "sbom-runtime")}
        assert all(ones.values()), ones

        refused = in_clone(two, proj_name, "up", "--stage", "prod", "--no-build")
        assert refused.returncode == 1
        assert_one_line(refused.stdout, f"{project_two}:prod is not built yet", "without --no-build")

        up = in_clone(two, proj_name, "up", "--stage", "prod")  # builds its own images, then runs them
        assert up.returncode == 0, up.stdout[-3000:]
        assert image_id(f"{project_two}:prod") not in (None, ones["prod"])
        assert {stage: image_id(f"{project_one}:{stage}") for stage in ones} == ones  # one's images stay put
        labels = (f"label=com.docker.compose.project={project_two}", "label=com.docker.compose.service=prod")
        running = docker("ps", "--filter", labels[0], "--filter", labels[1], "--format", "{{.Image}}").stdout
        assert running.split() == [f"{project_two}:prod"]
        assert docker("image", "ls", "--quiet", proj_name).stdout.split() == []  # no image of the shared name

        assert in_clone(two, proj_name, "down").returncode == 0
        cleaned = in_clone(two, proj_name, "clean")
        assert cleaned.returncode == 0, cleaned.stdout[-3000:]
        assert image_id(f"{project_two}:prod") is None
        assert {stage: image_id(f"{project_one}:{stage}") for stage in ones} == ones
        assert in_clone(one, proj_name, "clean").returncode == 0
        assert image_id(f"{project_one}:prod") is None


@pytest.mark.parametrize("redirect", ["<&-", "</dev/null"], ids=["stdin closed", "stdin from /dev/null"])
def test_interrupting_qa_without_a_terminal_ends_cleanly_and_leaves_nothing(engine, tmp_path, redirect):
    from test_faults import SLOW_TEST, checkout_copy

    with checkout_copy(engine, tmp_path, "interrupted", {"tests/site/test_site_zz_slow.py": SLOW_TEST}) as checkout:
        process = subprocess.Popen(
            ["bash", "-c", f'exec "$@" {redirect}', "_", *invoke_argv(), "qa"],
            cwd=checkout.root,
            env=tool_env(checkout.env, drop=("COMPOSE_PROJECT_NAME", "APP_PORT")),
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = interrupt_when_running(process, f"{checkout.project}-qa-pytest", "invoke qa")
        assert process.returncode != 0, output[-3000:]
        assert "Traceback" not in output and "closed file" not in output, output[-3000:]
        assert checkout.leftovers(engine) == {}, output[-3000:]
