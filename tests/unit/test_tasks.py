"""tasks.py through Invoke's MockContext: the exact commands each task runs, and what it refuses."""

from __future__ import annotations

import inspect
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from invoke import Config, MockContext, Result
from invoke.exceptions import Exit

import tasks
from lifecycle import stack
from lifecycle.settings import Settings, load_settings

CHECKOUT = Path(__file__).resolve().parents[2]
PREFLIGHT = (["docker", "version", "--format", "{{.Server.Version}}"], ["docker", "compose", "version", "--short"])
UNKNOWN_STAGE = "error: unknown stage 'qa'; use one of: dev, test-qa, stage, prod"


@pytest.fixture
def make_checkout(tmp_path, monkeypatch):
    """`make_checkout(**environ)`: a minimal tmp checkout that `tasks.load_settings` resolves to.

    APP_PORT counts as free, whatever listens on this machine (tests that need it taken patch it again).
    """
    monkeypatch.setattr(stack, "port_is_free", lambda port: True)

    def make(**environ: str) -> Settings:
        root = tmp_path / "checkout"
        (root / "django_site").mkdir(parents=True, exist_ok=True)
        (root / "manage.py").write_text("import sys\n")
        (root / "django_site" / "__init__.py").write_text("")
        environ = {"PROJ_NAME": "shop", **environ}
        monkeypatch.setattr(tasks, "load_settings", lambda: load_settings(root=root, environ=environ))
        return load_settings(root=root, environ=environ)

    return make


def context(answers: dict | None = None, dry: bool = False) -> MockContext:
    """A MockContext where the engine and Compose v2 answer and every other command succeeds silently.

    `answers` maps a regex (matched against the start of the shell command) to a Result, ahead of the defaults.
    """
    run = {re.compile(pattern): result for pattern, result in (answers or {}).items()}
    run.setdefault(re.compile(r"docker version "), Result("28.1.1\n"))
    run.setdefault(re.compile(r"docker compose version "), Result("2.40.3\n"))
    run.setdefault(re.compile(r".*"), Result(""))
    config = Config(overrides={"run": {"dry": True}}) if dry else None
    return MockContext(config=config, run=run, repeat=True)


def commands(c: MockContext) -> list[list[str]]:
    return [shlex.split(call.args[0]) for call in c.run.call_args_list]


def compose_argv(settings: Settings, profile: str, *args: str) -> list[str]:
    return ["docker", "compose", "--project-name", settings.project_name,
            "--file", str(settings.root / "docker" / "compose.yaml"), "--profile", profile, *args]  # fmt: skip


def build_argv(settings: Settings, profile: str, *args: str) -> list[str]:
    """Builds run with compose's warnings off (the bake fallback warns on every build without buildx)."""
    return ["docker", "--log-level", "error", *compose_argv(settings, profile, *args)[1:]]


def compose_calls(c: MockContext) -> list[list[str]]:
    return [argv for argv in commands(c) if argv[:3] == ["docker", "compose", "--project-name"] or argv[:5] == [
        "docker", "--log-level", "error", "compose", "--project-name"]]  # fmt: skip


# -------------------------------------------------------------------------------------------------- build


def test_build_prod_without_cache_runs_the_exact_compose_build(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.build(c, stage="prod", no_cache=True)
    expected = build_argv(settings, "prod", "build", "--no-cache", "prod")
    assert compose_calls(c) == [expected]
    build_call = c.run.call_args_list[commands(c).index(expected)]
    assert "COMPOSE_BAKE" not in build_call.kwargs["env"]
    assert re.fullmatch(r"[0-9a-f]{64}", build_call.kwargs["env"]["ZIP_SHA256"])
    assert settings.zip_path.is_file()


def test_build_runs_preflight_first_and_checks_the_base_image(make_checkout):
    make_checkout()
    c = context()
    tasks.build(c, stage="dev")
    argvs = commands(c)
    assert argvs[:2] == list(PREFLIGHT)
    assert ["docker", "image", "inspect", "--format", "{{.Id}}", "python:3.12-slim"] in argvs


def test_build_dev_does_not_zip(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.build(c)
    assert compose_calls(c) == [build_argv(settings, "dev", "build", "dev")]
    assert not settings.zip_path.exists()


def test_build_unknown_stage_exits_with_one_line_and_builds_nothing(make_checkout):
    settings = make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        tasks.build(c, stage="qa")
    assert (error.value.message, error.value.code) == (UNKNOWN_STAGE, 1)
    assert compose_calls(c) == []
    assert "build" not in [word for argv in commands(c) for word in argv]
    assert not settings.zip_path.exists()
    assert not (settings.root / "docker").exists()  # certs were not staged either


def test_build_refuses_when_the_engine_is_down(make_checkout):
    settings = make_checkout()
    c = context({r"docker version ": Result(exited=1)})
    with pytest.raises(Exit) as error:
        tasks.build(c, stage="prod")
    assert error.value.message.startswith("error: the Docker engine is not reachable (docker version failed); ")
    assert "\n" not in error.value.message
    assert commands(c) == list(PREFLIGHT)
    assert not settings.zip_path.exists()


def test_build_with_a_missing_base_image_that_cannot_be_pulled_exits(make_checkout):
    make_checkout()
    c = context({r"docker image inspect ": Result(exited=1), r"docker pull ": Result(exited=1)})
    with pytest.raises(Exit) as error:
        tasks.build(c, stage="dev")
    assert error.value.message.startswith("error: base image python:3.12-slim is neither present nor pullable")
    assert compose_calls(c) == []


# --------------------------------------------------------------------------------------------------- down


def test_down_runs_compose_down_keeping_volumes(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.down(c)
    assert compose_calls(c) == [compose_argv(settings, "*", "down", "--remove-orphans")]


def test_down_volumes_without_yes_and_no_terminal_exits_and_removes_nothing(make_checkout, monkeypatch):
    settings = make_checkout()
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal
    c = context()
    with pytest.raises(Exit) as error:
        tasks.down(c, volumes=True)
    assert error.value.message == (
        f"error: --volumes deletes the database of {settings.project_name}; add --yes to confirm (nothing was changed)"
    )
    assert error.value.code == 1
    assert compose_calls(c) == []


def test_down_volumes_with_yes_deletes_the_volume(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.down(c, volumes=True, yes=True)
    assert compose_calls(c) == [compose_argv(settings, "*", "down", "--remove-orphans", "--volumes")]


# ----------------------------------------------------------------------------------------------------- up


def test_up_prod_without_secret_key_exits_and_runs_nothing(make_checkout):
    settings = make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        tasks.up(c, stage="prod")
    assert "DJANGO_SECRET_KEY" in error.value.message
    assert error.value.message.startswith("error: prod needs DJANGO_SECRET_KEY; ")
    assert commands(c) == list(PREFLIGHT)  # only the read-only probes
    assert not settings.zip_path.exists()


def test_up_test_qa_points_to_invoke_qa_and_runs_nothing(make_checkout):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        tasks.up(c, stage="test-qa")
    assert error.value.message == (
        "error: test-qa runs the tests and exits, it is not a service to keep up; use invoke qa"
    )
    assert commands(c) == list(PREFLIGHT)


def test_up_prod_builds_then_waits_for_health(make_checkout):
    settings = make_checkout(DJANGO_SECRET_KEY="k")
    c = context()
    tasks.up(c, stage="prod", wait_timeout="60")
    assert compose_calls(c) == [
        build_argv(settings, "prod", "build", "prod"),
        compose_argv(settings, "prod", "up", "--detach", "--no-build", "--wait", "--wait-timeout", "60"),
    ]


def test_up_no_build_skips_the_build(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.up(c, stage="dev", build=False)
    assert compose_calls(c) == [
        compose_argv(settings, "dev", "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180")
    ]


def test_up_with_app_port_taken_by_something_else_exits_before_building(make_checkout, monkeypatch):
    settings = make_checkout(APP_PORT="8123")
    monkeypatch.setattr(stack, "port_is_free", lambda port: port != 8123)
    c = context()
    with pytest.raises(Exit) as error:
        tasks.up(c, stage="dev")
    assert error.value.message.startswith("error: 127.0.0.1:8123 (APP_PORT) is already in use; ")
    assert compose_calls(c) == [compose_argv(settings, "dev", "ps", "--quiet", "dev")]
    assert not settings.zip_path.exists()


def test_up_with_app_port_taken_by_this_stage_goes_ahead(make_checkout, monkeypatch):
    settings = make_checkout()
    monkeypatch.setattr(stack, "port_is_free", lambda port: False)
    c = context({r"docker compose .* ps --quiet dev": Result("0123abcd\n")})
    tasks.up(c, stage="dev", build=False)
    assert compose_calls(c)[-1] == compose_argv(
        settings, "dev", "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180"
    )


def test_up_that_never_gets_healthy_shows_logs_and_exits(make_checkout):
    settings = make_checkout()
    c = context({r"docker compose .* up ": Result(exited=1)})
    with pytest.raises(Exit) as error:
        tasks.up(c, stage="dev", build=False)
    assert error.value.message == (
        "error: dev did not come up healthy (deadline 180s); see the logs above (invoke logs)"
    )
    assert compose_calls(c)[-1] == compose_argv(settings, "*", "logs", "--no-color", "--tail", "40")


# ------------------------------------------------------------------------------------------ manage, compose


def test_manage_runs_a_one_off_container_with_the_split_command(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.manage(c, "migrate --plan", stage="prod")
    expected = compose_argv(settings, "prod", "run", "--rm", "prod", "python", "manage.py", "migrate", "--plan")
    assert compose_calls(c) == [expected]
    assert c.run.call_args_list[-1].kwargs["pty"] is True


def test_manage_unknown_stage_exits(make_checkout):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        tasks.manage(c, "migrate", stage="qa")
    assert error.value.message == UNKNOWN_STAGE
    assert compose_calls(c) == []


def test_compose_passthrough_keeps_project_file_and_profile(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.compose_passthrough(c, "config --services", stage="stage")
    assert compose_calls(c) == [compose_argv(settings, "stage", "config", "--services")]


def test_logs_of_one_service_followed(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.logs(c, service="db", follow=True)
    assert compose_calls(c) == [compose_argv(settings, "*", "logs", "--no-color", "--tail", "200", "--follow", "db")]


# ------------------------------------------------------------------------------------------------------- qa


def test_qa_failure_keeps_reports_tears_down_and_exits_with_pytests_status(make_checkout):
    settings = make_checkout()
    c = context({r"docker compose .* run ": Result(exited=3)})
    with pytest.raises(Exit) as error:
        tasks.qa(c, pytest_args="-k health")
    assert error.value.code == 3
    project = f"{settings.project_name}-qa"
    argvs = commands(c)
    assert ["docker", "compose", "--project-name", project, "--file", str(settings.root / "docker/compose.yaml"),
            "--profile", "test-qa", "run", "--name", f"{project}-pytest", "--no-TTY", "test-qa", "-k", "health",
            ] in argvs  # fmt: skip
    assert argvs[-2:] == [
        ["docker", "rm", "--force", "--volumes", f"{project}-pytest"],
        ["docker", "compose", "--project-name", project, "--file", str(settings.root / "docker/compose.yaml"),
         "--profile", "*", "down", "--remove-orphans", "--volumes"],
    ]  # fmt: skip
    assert {p.name for p in (settings.root / "reports").iterdir()} == {"compose-ps.txt", "compose-logs.txt"}


# -------------------------------------------------------------------------------------------------- dry run


def test_dry_build_writes_no_files(make_checkout):
    settings = make_checkout()
    c = context(dry=True)
    tasks.build(c, stage="prod")
    assert build_argv(settings, "prod", "build", "prod") in commands(c)
    assert not settings.zip_path.exists()
    assert not settings.zip_path.parent.exists()
    assert not (settings.root / "docker").exists()


def test_dry_build_skips_preflight(make_checkout):
    make_checkout()
    c = context({r"docker version ": Result(exited=1)}, dry=True)
    tasks.build(c, stage="dev")
    assert [argv for argv in commands(c) if argv[:2] == ["docker", "version"]] == []


def test_dry_zip_writes_nothing(make_checkout):
    settings = make_checkout()
    tasks.zip(context(dry=True))
    assert not settings.zip_path.parent.exists()


def test_zip_writes_the_zip(make_checkout):
    settings = make_checkout()
    c = context()
    tasks.zip(c)
    assert settings.zip_path.is_file()
    assert commands(c) == []  # no engine needed


def test_dry_clean_removes_no_files(make_checkout):
    settings = make_checkout()
    tasks.zip(context())
    c = context(dry=True)
    tasks.clean(c)
    assert settings.zip_path.is_file()
    assert settings.zip_path.with_name("Project_playground.manifest.json").is_file()
    removals = [argv[3:] for argv in commands(c) if argv[:3] == ["docker", "image", "rm"]]
    assert len(removals) == 1
    assert {"shop:dev", "shop:test-qa", "shop:stage", "shop:prod"} <= set(removals[0])


# -------------------------------------------------------------------------------------- the command line


def test_invoke_list_shows_every_task_with_a_summary():
    done = subprocess.run(
        [str(CHECKOUT / ".venv" / "bin" / "invoke"), "--list"],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = dict(re.findall(r"^  (\S+)\s{2,}(\S.*)$", done.stdout, flags=re.MULTILINE))
    assert set(listed) == set(tasks.ns.task_names)
    assert all(summary.strip() for summary in listed.values())


def test_invoke_help_build_documents_stage_and_no_cache_with_defaults():
    done = subprocess.run(
        [str(CHECKOUT / ".venv" / "bin" / "invoke"), "--help", "build"],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    options = {line.split()[0].rstrip(","): line for line in done.stdout.splitlines() if line.strip().startswith("-")}
    assert "--stage=STRING" in options["-s"] and "Default: dev." in options["-s"]
    assert "--no-cache" in options["-n"] and "Default: off." in options["-n"]


def default_words(value) -> str | None:
    """How a help text must state a parameter's default (None: any wording)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value not in (None, "") else None


@pytest.mark.parametrize("name", sorted(tasks.ns.task_names))
def test_every_task_has_a_summary_and_states_each_default(name):
    task = tasks.ns[name]
    assert (inspect.getdoc(task.body) or "").strip()
    for parameter in list(inspect.signature(task.body).parameters.values())[1:]:
        text = task.help.get(parameter.name, "")
        assert text, f"{name} --{parameter.name} has no help"
        if parameter.default is inspect.Parameter.empty:
            continue
        assert "Default:" in text, f"{name} --{parameter.name} does not state its default"
        words = default_words(parameter.default)
        if words is not None:
            assert f"Default: {words}" in text
