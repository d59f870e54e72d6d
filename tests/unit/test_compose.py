"""lifecycle.compose: every builder call gives exactly this argument list."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import compose as cmd
from lifecycle.errors import UserError
from lifecycle.settings import load_settings

ROOT = Path("/checkout")
PROJECT = "shop-test"
SETTINGS = load_settings(root=ROOT, environ={"PROJ_NAME": "shop", "COMPOSE_PROJECT_NAME": PROJECT})
FILE = "/checkout/docker/compose.yaml"


def head(profile: str = "*", project: str = PROJECT) -> list[str]:
    return ["docker", "compose", "--project-name", project, "--file", FILE, "--profile", profile]


def build_head(profile: str) -> list[str]:
    """Builds keep compose's warnings off (the bake fallback's, on every build without buildx); errors show."""
    return ["docker", "--log-level", "error", *head(profile)[1:]]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # compose()
        pytest.param(cmd.compose(SETTINGS, "config"), [*head(), "config"], id="compose without a stage enables all"),
        pytest.param(cmd.compose(SETTINGS, "ps", stage="prod"), [*head("prod"), "ps"], id="compose with a stage"),
        pytest.param(
            cmd.compose(SETTINGS, "ls", project="other"), [*head(project="other"), "ls"], id="compose project override"
        ),
        pytest.param(
            cmd.compose(SETTINGS, "build", file="docker/offline/compose.yaml"),
            [*head()[:5], "/checkout/docker/offline/compose.yaml", "--profile", "*", "build"],
            id="compose with another file in the checkout",
        ),
        # build()
        pytest.param(cmd.build(SETTINGS, "dev"), [*build_head("dev"), "build", "dev"], id="build dev uses the cache"),
        pytest.param(
            cmd.build(SETTINGS, "prod", no_cache=True),
            [*build_head("prod"), "build", "--no-cache", "prod"],
            id="build prod without cache passes --no-cache",
        ),
        pytest.param(
            cmd.build(SETTINGS, "stage", pull=True),
            [*build_head("stage"), "build", "--pull", "stage"],
            id="build stage with pull passes --pull",
        ),
        pytest.param(
            cmd.build(SETTINGS, "test-qa", no_cache=True, pull=True),
            [*build_head("test-qa"), "build", "--no-cache", "--pull", "test-qa"],
            id="build with both flags passes both",
        ),
        # up()
        pytest.param(
            cmd.up(SETTINGS, "prod"),
            [*head("prod"), "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180"],
            id="up waits 180 seconds by default",
        ),
        pytest.param(
            cmd.up(SETTINGS, "dev", wait_timeout=30, project="p2"),
            [*head("dev", "p2"), "up", "--detach", "--no-build", "--wait", "--wait-timeout", "30"],
            id="up with a timeout and a project",
        ),
        # down()
        pytest.param(cmd.down(SETTINGS), [*head(), "down", "--remove-orphans"], id="down keeps volumes by default"),
        pytest.param(
            cmd.down(SETTINGS, volumes=True),
            [*head(), "down", "--remove-orphans", "--volumes"],
            id="down with volumes passes --volumes",
        ),
        pytest.param(
            cmd.down(SETTINGS, volumes=True, project="shop-test-qa"),
            [*head(project="shop-test-qa"), "down", "--remove-orphans", "--volumes"],
            id="down of another project",
        ),
        # logs()
        pytest.param(cmd.logs(SETTINGS), [*head(), "logs", "--no-color", "--tail", "200"], id="logs of everything"),
        pytest.param(
            cmd.logs(SETTINGS, ["db", "prod"], follow=True, tail="10"),
            [*head(), "logs", "--no-color", "--tail", "10", "--follow", "db", "prod"],
            id="logs of two services followed",
        ),
        pytest.param(
            cmd.logs(SETTINGS, tail="all", project="p2"),
            [*head(project="p2"), "logs", "--no-color", "--tail", "all"],
            id="logs of another project",
        ),
        # ps()
        pytest.param(cmd.ps(SETTINGS), [*head(), "ps", "--all"], id="ps lists stopped containers too"),
        pytest.param(cmd.ps(SETTINGS, project="p2"), [*head(project="p2"), "ps", "--all"], id="ps of another project"),
        # exec_()
        pytest.param(cmd.exec_(SETTINGS, "dev", ["bash"]), [*head("dev"), "exec", "dev", "bash"], id="exec with tty"),
        pytest.param(
            cmd.exec_(SETTINGS, "prod", ["ls", "-l"], tty=False),
            [*head("prod"), "exec", "--no-TTY", "prod", "ls", "-l"],
            id="exec without tty passes --no-TTY",
        ),
        # run()
        pytest.param(
            cmd.run(SETTINGS, "test-qa", ["pytest"]),
            [*head("test-qa"), "run", "--rm", "--no-TTY", "test-qa", "pytest"],
            id="run removes the container and has no tty by default",
        ),
        pytest.param(
            cmd.run(SETTINGS, "test-qa", ["pytest", "-x"], name="c1", remove=False, project="p-qa"),
            [*head("test-qa", "p-qa"), "run", "--name", "c1", "--no-TTY", "test-qa", "pytest", "-x"],
            id="run with a name keeps the container",
        ),
        pytest.param(
            cmd.run(SETTINGS, "prod", ["env"], env=["A=1", "B=two words"]),
            [*head("prod"), "run", "--rm", "--no-TTY", "--env", "A=1", "--env", "B=two words", "prod", "env"],
            id="run passes each env pair",
        ),
        pytest.param(
            cmd.run(SETTINGS, "prod", ["python", "manage.py", "migrate"], tty=True),
            [*head("prod"), "run", "--rm", "prod", "python", "manage.py", "migrate"],
            id="run with tty drops --no-TTY",
        ),
        pytest.param(
            cmd.run(SETTINGS, "dev", ["env"], env=["DJANGO_SUPERUSER_PASSWORD"]),
            [*head("dev"), "run", "--rm", "--no-TTY", "--env", "DJANGO_SUPERUSER_PASSWORD", "dev", "env"],
            id="run passes a name alone, compose takes its value from its environment",
        ),
        pytest.param(
            cmd.exec_(SETTINGS, "dev", ["bash", "-c", "ls"], tty=False, env=["A=1", "S"]),
            [*head("dev"), "exec", "--no-TTY", "--env", "A=1", "--env", "S", "dev", "bash", "-c", "ls"],
            id="exec without a terminal, with env",
        ),
        # config_check(), docker()
        pytest.param(
            cmd.config_check(SETTINGS, "stage"), [*head("stage"), "config", "--quiet"], id="config check of a stage"
        ),
        pytest.param(cmd.docker("image", "inspect", "x"), ["docker", "image", "inspect", "x"], id="plain docker"),
        pytest.param(cmd.docker(), ["docker"], id="plain docker without arguments"),
    ],
)
def test_builders(argv, expected):
    assert argv == expected


def test_default_project_name_and_file_come_from_the_checkout(tmp_path):
    settings = load_settings(root=tmp_path, environ={})
    argv = cmd.ps(settings)
    assert argv[argv.index("--project-name") + 1] == settings.project_name
    assert argv[argv.index("--file") + 1] == str(tmp_path / "docker" / "compose.yaml")


UNKNOWN = "unknown stage 'qa'; use one of: dev, test-qa, stage, prod"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: cmd.check_stage("qa"), id="check_stage refuses an unknown stage"),
        pytest.param(lambda: cmd.compose(SETTINGS, "ps", stage="qa"), id="compose refuses an unknown stage"),
        pytest.param(lambda: cmd.build(SETTINGS, "qa"), id="build refuses an unknown stage"),
        pytest.param(lambda: cmd.up(SETTINGS, "qa"), id="up refuses an unknown stage"),
        pytest.param(lambda: cmd.exec_(SETTINGS, "qa", ["bash"]), id="exec refuses an unknown stage"),
        pytest.param(lambda: cmd.run(SETTINGS, "qa", ["true"]), id="run refuses an unknown stage"),
        pytest.param(lambda: cmd.config_check(SETTINGS, "qa"), id="config check refuses an unknown stage"),
    ],
)
def test_unknown_stage_names_the_valid_stages(call):
    with pytest.raises(UserError) as error:
        call()
    assert str(error.value) == UNKNOWN


@pytest.mark.parametrize("stage", ["dev", "test-qa", "stage", "prod"])
def test_every_stage_is_accepted(stage):
    assert cmd.check_stage(stage) == stage
