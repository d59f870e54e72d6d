"""lifecycle.commands.compose: every builder call gives exactly this argument list."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.commands import compose, docker
from lifecycle.settings import load_settings
from lifecycle.stages import DEV, PROD, STAGE, TEST_QA

ROOT = Path("/checkout")
PROJECT = "shop-test"
SETTINGS = load_settings(root=ROOT, environ={"PROJ_NAME": "shop", "COMPOSE_PROJECT_NAME": PROJECT})
FILE = "/checkout/docker/compose.yaml"
DEBUG_FILE = "/checkout/docker/compose.debug.yaml"
DEBUG_HEAD = ["docker", "compose", "--project-name", PROJECT, "--file", FILE, "--file", DEBUG_FILE, "--profile", "dev"]


def head(profile: str = "*", project: str = PROJECT) -> list[str]:
    return ["docker", "compose", "--project-name", project, "--file", FILE, "--profile", profile]


def build_head(profile: str) -> list[str]:
    """Builds keep compose's warnings off (the bake fallback's, on every build without buildx); errors show."""
    return ["docker", "--log-level", "error", *head(profile)[1:]]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # compose_argv()
        pytest.param(
            compose.compose_argv(SETTINGS, "config"), [*head(), "config"], id="compose without a stage enables all"
        ),
        pytest.param(
            compose.compose_argv(SETTINGS, "ps", stage=PROD), [*head("prod"), "ps"], id="compose with a stage"
        ),
        pytest.param(
            compose.compose_argv(SETTINGS, "ls", project="other"),
            [*head(project="other"), "ls"],
            id="compose project override",
        ),
        pytest.param(
            compose.compose_argv(SETTINGS, "build", file="docker/offline/compose.yaml"),
            [*head()[:5], "/checkout/docker/offline/compose.yaml", "--profile", "*", "build"],
            id="compose with another file in the checkout",
        ),
        # start_db_argv(): the one way the db service is started alone
        pytest.param(
            compose.start_db_argv(SETTINGS),
            [*head(), "up", "--detach", "--wait", "db"],
            id="start db and wait until it is healthy",
        ),
        pytest.param(
            compose.start_db_argv(SETTINGS, wait=False, build=False, stage=DEV),
            [*head("dev"), "up", "--detach", "--no-build", "db"],
            id="start db for up, which watches its health itself",
        ),
        pytest.param(
            compose.start_db_argv(SETTINGS, stage=TEST_QA, project="shop-test-qa"),
            [*head("test-qa", "shop-test-qa"), "up", "--detach", "--wait", "db"],
            id="start the qa project's own db",
        ),
        pytest.param(
            compose.start_db_argv(SETTINGS, build=False, bounded=True),
            [*head(), "up", "--detach", "--wait", "--wait-timeout", SETTINGS["WAIT_TIMEOUT"], "--no-build", "db"],
            id="start db after a physical restore's swap: healthy within WAIT_TIMEOUT, else it is rolled back",
        ),
        # manage_exec_argv(), manage_run_argv(): manage.py in a running or a one-off container
        pytest.param(
            compose.manage_exec_argv(SETTINGS, "prod", ["migrate", "--plan"]),
            [*head(), "exec", "--no-TTY", "prod", "python", "manage.py", "migrate", "--plan"],
            id="manage.py in the running container",
        ),
        pytest.param(
            compose.manage_run_argv(SETTINGS, DEV, ["migrate", "--noinput"]),
            [*head("dev"), "run", "--rm", "--no-TTY", "dev", "python", "manage.py", "migrate", "--noinput"],
            id="manage.py in a one-off container",
        ),
        pytest.param(
            compose.manage_run_argv(SETTINGS, DEV, ["shell"], tty=True, env=["A=1"]),
            [*head("dev"), "run", "--rm", "--env", "A=1", "dev", "python", "manage.py", "shell"],
            id="manage.py at a terminal with an env item",
        ),
        # docker volumes
        pytest.param(
            docker.volume_inspect_argv(compose.db_volume(SETTINGS)),
            ["docker", "volume", "inspect", "--format", "{{.Name}}", "shop-test_db-data"],
            id="the database volume is the project's db-data",
        ),
        pytest.param(
            docker.volume_inspect_argv(compose.db_volume(SETTINGS, project="shop-test-qa")),
            ["docker", "volume", "inspect", "--format", "{{.Name}}", "shop-test-qa_db-data"],
            id="another project's database volume",
        ),
        # build_argv()
        pytest.param(
            compose.build_argv(SETTINGS, DEV), [*build_head("dev"), "build", "dev"], id="build dev uses the cache"
        ),
        pytest.param(
            compose.build_argv(SETTINGS, PROD, no_cache=True),
            [*build_head("prod"), "build", "--no-cache", "prod"],
            id="build prod without cache passes --no-cache",
        ),
        pytest.param(
            compose.build_argv(SETTINGS, STAGE, pull=True),
            [*build_head("stage"), "build", "--pull", "stage"],
            id="build stage with pull passes --pull",
        ),
        pytest.param(
            compose.build_argv(SETTINGS, TEST_QA, no_cache=True, pull=True),
            [*build_head("test-qa"), "build", "--no-cache", "--pull", "test-qa"],
            id="build with both flags passes both",
        ),
        # build_argv() with the SBOM image, cat_in_image_argv()
        pytest.param(
            compose.build_argv(SETTINGS, PROD, with_sbom=True),
            [*build_head("*"), "build", "sbom-runtime", "prod"],
            id="build a stage with its sbom image: every profile",
        ),
        pytest.param(
            compose.build_argv(SETTINGS, DEV, no_cache=True, with_sbom=True),
            [*build_head("*"), "build", "--no-cache", "sbom-dev", "dev"],
            id="build a stage with its sbom image without cache",
        ),
        pytest.param(
            docker.cat_in_image_argv("shop:sbom-dev", "/sbom.cdx.json"),
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", "shop:sbom-dev", "/sbom.cdx.json"],
            id="cat a file of an image without network",
        ),
        # up_argv()
        pytest.param(
            compose.up_argv(SETTINGS, DEV, debug=True),
            [*DEBUG_HEAD, "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180"],
            id="up with the debugger adds the debug file",
        ),
        pytest.param(
            compose.up_argv(SETTINGS, DEV, debug=True, healthy=False),
            [*DEBUG_HEAD, "up", "--detach", "--no-build"],
            id="up without waiting for health (a server paused for a debugger)",
        ),
        pytest.param(
            compose.up_argv(SETTINGS, PROD),
            [*head("prod"), "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180"],
            id="up waits WAIT_TIMEOUT (180 seconds) by default",
        ),
        pytest.param(
            compose.up_argv(SETTINGS.override(WAIT_TIMEOUT="30"), DEV, project="p2"),
            [*head("dev", "p2"), "up", "--detach", "--no-build", "--wait", "--wait-timeout", "30"],
            id="up with a timeout and a project",
        ),
        pytest.param(
            compose.up_argv(SETTINGS, PROD, only="prod"),
            [*head("prod"), "up", "--detach", "--no-build", "--no-deps", "prod"],
            id="up of one service: no dependencies, no wait",
        ),
        pytest.param(
            compose.up_argv(SETTINGS, DEV, debug=True, only="dev"),
            [*DEBUG_HEAD, "up", "--detach", "--no-build", "--no-deps", "dev"],
            id="up of the debugged dev service alone",
        ),
        # down_argv()
        pytest.param(
            compose.down_argv(SETTINGS), [*head(), "down", "--remove-orphans"], id="down keeps volumes by default"
        ),
        pytest.param(
            compose.down_argv(SETTINGS, volumes=True),
            [*head(), "down", "--remove-orphans", "--volumes"],
            id="down with volumes passes --volumes",
        ),
        pytest.param(
            compose.down_argv(SETTINGS, volumes=True, project="shop-test-qa"),
            [*head(project="shop-test-qa"), "down", "--remove-orphans", "--volumes"],
            id="down of another project",
        ),
        # logs_argv()
        pytest.param(
            compose.logs_argv(SETTINGS), [*head(), "logs", "--no-color", "--tail", "200"], id="logs of everything"
        ),
        pytest.param(
            compose.logs_argv(SETTINGS, ["db", "prod"], follow=True, tail="10"),
            [*head(), "logs", "--no-color", "--tail", "10", "--follow", "db", "prod"],
            id="logs of two services followed",
        ),
        pytest.param(
            compose.logs_argv(SETTINGS, tail="all", project="p2"),
            [*head(project="p2"), "logs", "--no-color", "--tail", "all"],
            id="logs of another project",
        ),
        # ps_argv()
        pytest.param(compose.ps_argv(SETTINGS), [*head(), "ps", "--all"], id="ps lists stopped containers too"),
        pytest.param(
            compose.ps_argv(SETTINGS, project="p2"), [*head(project="p2"), "ps", "--all"], id="ps of another project"
        ),
        # exec_argv()
        pytest.param(
            compose.exec_argv(SETTINGS, DEV, ["bash"]), [*head("dev"), "exec", "dev", "bash"], id="exec with tty"
        ),
        pytest.param(
            compose.exec_argv(SETTINGS, PROD, ["ls", "-l"], tty=False),
            [*head("prod"), "exec", "--no-TTY", "prod", "ls", "-l"],
            id="exec without tty passes --no-TTY",
        ),
        # run_argv()
        pytest.param(
            compose.run_argv(SETTINGS, TEST_QA, ["pytest"]),
            [*head("test-qa"), "run", "--rm", "--no-TTY", "test-qa", "pytest"],
            id="run removes the container and has no tty by default",
        ),
        pytest.param(
            compose.run_argv(SETTINGS, TEST_QA, ["pytest", "-x"], name="c1", remove=False, project="p-qa"),
            [*head("test-qa", "p-qa"), "run", "--name", "c1", "--no-TTY", "test-qa", "pytest", "-x"],
            id="run with a name keeps the container",
        ),
        pytest.param(
            compose.run_argv(SETTINGS, PROD, ["env"], env=["A=1", "B=two words"]),
            [*head("prod"), "run", "--rm", "--no-TTY", "--env", "A=1", "--env", "B=two words", "prod", "env"],
            id="run passes each env pair",
        ),
        pytest.param(
            compose.run_argv(SETTINGS, TEST_QA, [], env=["QA_CHANGED=ab12"], volumes=["p-testmon:/testmon"]),
            [
                *head("test-qa"),
                "run",
                "--rm",
                "--no-TTY",
                "--env",
                "QA_CHANGED=ab12",
                "--volume",
                "p-testmon:/testmon",
                "test-qa",
            ],
            id="run mounts each volume after the env pairs (qa --changed)",
        ),
        pytest.param(
            compose.run_argv(SETTINGS, PROD, ["python", "manage.py", "migrate"], tty=True),
            [*head("prod"), "run", "--rm", "prod", "python", "manage.py", "migrate"],
            id="run with tty drops --no-TTY",
        ),
        pytest.param(
            compose.run_argv(SETTINGS, DEV, ["env"], env=["DJANGO_SUPERUSER_PASSWORD"]),
            [*head("dev"), "run", "--rm", "--no-TTY", "--env", "DJANGO_SUPERUSER_PASSWORD", "dev", "env"],
            id="run passes a name alone, compose takes its value from its environment",
        ),
        pytest.param(
            compose.exec_argv(SETTINGS, DEV, ["bash", "-c", "ls"], tty=False, env=["A=1", "S"]),
            [*head("dev"), "exec", "--no-TTY", "--env", "A=1", "--env", "S", "dev", "bash", "-c", "ls"],
            id="exec without a terminal, with env",
        ),
        # config_argv(), docker_argv()
        pytest.param(
            compose.config_argv(SETTINGS, STAGE), [*head("stage"), "config", "--quiet"], id="config check of a stage"
        ),
        pytest.param(
            docker.docker_argv("image", "inspect", "x"), ["docker", "image", "inspect", "x"], id="plain docker"
        ),
        pytest.param(docker.docker_argv(), ["docker"], id="plain docker without arguments"),
    ],
)
def test_builders(argv, expected):
    assert argv == expected


def test_default_project_name_and_file_come_from_the_checkout(tmp_path):
    settings = load_settings(root=tmp_path, environ={})
    argv = compose.ps_argv(settings)
    assert argv[argv.index("--project-name") + 1] == settings.project_name
    assert argv[argv.index("--file") + 1] == str(tmp_path / "docker" / "compose.yaml")


def test_a_stage_gives_its_profile_and_service():
    """The builders use the Stage's own names; they never check it again (Stage.parse did)."""
    for stage in (DEV, TEST_QA, STAGE, PROD):
        argv = compose.run_argv(SETTINGS, stage, ["true"])
        assert argv[argv.index("--profile") + 1] == stage.profile
        assert argv[-2:] == [stage.service, "true"]


PROJECT_FILTER = ["--filter", "label=com.docker.compose.project=shop"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (docker.version_argv(), ["docker", "version", "--format", "{{.Server.Version}}"]),
        (docker.compose_version_argv(), ["docker", "compose", "version", "--short"]),
        (docker.info_argv(), ["docker", "info"]),
        (docker.info_argv("{{.DockerRootDir}}"), ["docker", "info", "--format", "{{.DockerRootDir}}"]),
        (docker.image_ids_argv(["a", "b"]), ["docker", "image", "inspect", "--format", "{{.Id}}", "a", "b"]),
        (
            docker.image_ids_argv(["a"], "key"),
            ["docker", "image", "inspect", "--format", '{{.Id}} {{index .Config.Labels "key"}}', "a"],
        ),
        (
            docker.image_label_argv("a", docker.OWNER_LABEL),
            ["docker", "image", "inspect", "--format", '{{index .Config.Labels "io.lifecycle.compose-project"}}', "a"],
        ),
        (docker.image_tags_argv("shop"), ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "shop"]),
        (
            docker.superseded_builds_argv("shop"),
            [
                "docker",
                "image",
                "ls",
                "--quiet",
                "--no-trunc",
                "--filter",
                "dangling=true",
                "--filter",
                "label=io.lifecycle.compose-project=shop",
            ],
        ),
        (docker.pull_argv("a"), ["docker", "pull", "--quiet", "a"]),
        (docker.image_rm_argv("a", "b"), ["docker", "image", "rm", "a", "b"]),
        (docker.image_rm_argv("a", force=True), ["docker", "image", "rm", "--force", "a"]),
        (
            docker.service_container_argv("shop", "db"),
            [
                "docker",
                "ps",
                "--all",
                "--no-trunc",
                *PROJECT_FILTER,
                "--filter",
                "label=com.docker.compose.service=db",
                "--filter",
                "label=com.docker.compose.oneoff=False",
                "--format",
                "{{.ID}} {{.Image}} {{.State}}",
            ],
        ),
        (docker.running_containers_argv("shop", "{{.ID}}"), ["docker", "ps", *PROJECT_FILTER, "--format", "{{.ID}}"]),
        (docker.publishing_argv("shop", 80), ["docker", "ps", "--quiet", *PROJECT_FILTER, "--filter", "publish=80"]),
        (docker.container_state_argv("c1"), ["docker", "inspect", "--format", "{{json .State}}", "c1"]),
        (docker.copy_out_argv("c1", "/reports/.", "out"), ["docker", "cp", "c1:/reports/.", "out"]),
        (docker.container_rm_argv("c1"), ["docker", "rm", "--force", "c1"]),
        (docker.container_rm_argv("c1", volumes=True), ["docker", "rm", "--force", "--volumes", "c1"]),
        (docker.cpuset_argv(["c1", "c2"], "0-2"), ["docker", "update", "--cpuset-cpus", "0-2", "c1", "c2"]),
    ],
    ids=lambda value: " ".join(value[:4]) if isinstance(value, list) else None,
)
def test_plain_docker_builders(argv, expected):
    assert argv == expected


JOBS_TOML = '[[tool.lifecycle.jobs]]\nname = "rows"\nschedule = "*/10 * * * * *"\ncommand = "write_row"\n'


def test_with_jobs_declared_each_stage_with_a_scheduler_enables_it(tmp_path):
    (tmp_path / "pyproject.toml").write_text(JOBS_TOML, encoding="utf-8")
    jobs = load_settings(root=tmp_path, environ={"COMPOSE_PROJECT_NAME": PROJECT})
    file = str(tmp_path / compose.COMPOSE_FILE)
    start = ["docker", "compose", "--project-name", PROJECT, "--file", file, "--profile"]
    assert compose.up_argv(jobs, PROD, only="prod-scheduler") == [
        *start,
        "prod",
        "--profile",
        "prod-jobs",
        "up",
        "--detach",
        "--no-build",
        "--no-deps",
        "prod-scheduler",
    ]
    assert compose.compose_argv(jobs, "ps", stage=DEV)[-4:] == ["dev", "--profile", "dev-jobs", "ps"]
    assert compose.compose_argv(jobs, "ps", stage=TEST_QA)[-2:] == ["test-qa", "ps"]  # no scheduler there
    assert compose.compose_argv(SETTINGS, "ps", stage=PROD)[-2:] == ["prod", "ps"]  # no jobs: no scheduler
    assert compose.scheduler_argv(jobs, STAGE, ["run", "rows"], running=False) == [
        *start, "stage", "--profile", "stage-jobs", "run", "--rm", "--no-TTY", "stage-scheduler",
        "python", "-m", "lifecycle_site.scheduler", "run", "rows"]  # fmt: skip
    assert compose.scheduler_argv(jobs, PROD, ["last"], running=True)[-7:] == [
        "exec", "--no-TTY", "prod-scheduler", "python", "-m", "lifecycle_site.scheduler", "last"]  # fmt: skip
    assert '"name":"rows"' in jobs.env["JOBS"] and SETTINGS.env["JOBS"] == ""
