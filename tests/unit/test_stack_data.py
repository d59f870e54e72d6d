"""db.* --swarm (lifecycle/stack_data.py): the probes' argv, the decisions on their answers, and which container a
backup, a restore and the migrations after it use; no engine (tests/integration/test_swarm_deploy.py has one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.backup import Database, Running
from lifecycle.commands import swarm
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.runner import Result
from lifecycle.settings import load_settings
from lifecycle.stack_data import LABELS, StackDatabase, parse_images, stack_running

ZIP, COMMIT = "a" * 64, "0123abc"
APP_IMAGE = f"127.0.0.1:5000/shop@sha256:{'b' * 64}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(swarm.task_nodes("shop_db"),
                     ["docker", "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}",
                      "shop_db"], id="where-the-db-task-runs"),
        pytest.param(swarm.service_images("shop", ["db", "app"]),
                     ["docker", "service", "inspect", "--format",
                      "{{.Spec.Name}}\t{{.Spec.TaskTemplate.ContainerSpec.Image}}", "shop_db", "shop_app"],
                     id="what-the-services-run"),
        pytest.param(swarm.task_containers("shop", "db"),
                     ["docker", "container", "ls", "--quiet", "--filter",
                      "label=com.docker.swarm.service.name=shop_db"], id="the-db-task-here"),
    ],
)  # fmt: skip
def test_probes_give_exact_argv(argv, expected):
    assert argv == expected


@pytest.mark.parametrize(
    ("nodes", "words"),
    [
        pytest.param("node-2\n", ["shop_db runs on node node-2, not on this one", "run this there"], id="elsewhere"),
        pytest.param("", ["no task of shop_db runs", "invoke deploy --stage prod"], id="not-deployed"),
        pytest.param("n1\nn1\n", ["on node n1, not"], id="one-node-named-once"),
    ],
)
def test_not_here_is_one_line_saying_where_and_what_to_do(nodes, words):
    line = swarm.not_here("shop_db", nodes)
    assert "\n" not in line and "nothing was done" in line
    assert all(word in line for word in words), line


@pytest.mark.parametrize(
    ("images", "labels", "expected"),
    [
        pytest.param(f"shop_db\tmysql:8.4\nshop_app\t{APP_IMAGE}\n", f"{ZIP}\t{COMMIT}\n",
                     Running("mysql:8.4", "shop_app", ZIP, COMMIT), id="both-services"),
        pytest.param(f"shop_db\tmysql:8.4\nshop_app\t{APP_IMAGE}\n", "<no value>\t<no value>\n",
                     Running("mysql:8.4", "shop_app", "unknown", "unknown"), id="image-without-labels"),
        pytest.param(f"shop_db\tmysql:8.4\nshop_app\t{APP_IMAGE}\n", "",
                     Running("mysql:8.4", "shop_app", "unknown", "unknown"), id="image-not-on-this-node"),
        pytest.param("shop_db\tmariadb:11.4\n", "", Running("mariadb:11.4"), id="no-app-service"),
        pytest.param("", "", Running(), id="nothing-deployed"),
    ],
)  # fmt: skip
def test_what_runs_comes_from_the_stacks_services_and_the_release_labels(images, labels, expected):
    assert stack_running("shop", parse_images(images), labels) == expected


class StackRunner:
    """The engine as the probes see it: which tasks run on this node, where the db task runs, the images."""

    def __init__(self, here: tuple[str, ...] = ("db", "app"), db_node: str = "node-1"):
        self.here, self.db_node, self.calls = here, db_node, []

    def __call__(self, argv, *, env=None, warn=False, capture=False, interactive=False, timeout=None):
        self.calls.append(argv)
        text = " ".join(argv)
        for service, task in (("db", "dbtask0123456789"), ("app", "apptask0123456789")):
            if argv[:3] == ["docker", "container", "ls"] and text.endswith(f"=shop_{service}"):
                return Result(0, f"{task}\n" if service in self.here else "")
        if argv[:3] == ["docker", "service", "ps"]:
            return Result(0, f"{self.db_node}\n" if self.db_node else "")
        if argv[:3] == ["docker", "service", "inspect"]:
            return Result(0, f"shop_db\tmysql:8.4\nshop_app\t{APP_IMAGE}\n")
        if argv[:3] == ["docker", "image", "inspect"]:
            return Result(0, f"{ZIP}\t{COMMIT}\n")
        return Result(0, "")


def stack_db(tmp_path: Path, runner: StackRunner, **environ: str) -> StackDatabase:
    settings = load_settings(root=tmp_path, environ={"COMPOSE_PROJECT_NAME": "shop", **environ})
    return StackDatabase(Context(settings, runner, say=lambda message: None))


def test_the_db_task_on_this_node_is_the_database_and_what_runs_is_the_stacks(tmp_path):
    runner = StackRunner()
    db = stack_db(tmp_path, runner)
    db.require_running()
    assert db.container().id == "dbtask0123456789" and db.is_running()
    assert db.containers() == Running("mysql:8.4", "shop_app", ZIP, COMMIT)
    assert ["docker", "image", "inspect", "--format", LABELS, APP_IMAGE] in runner.calls
    assert db.app_image() == APP_IMAGE


@pytest.mark.parametrize(
    ("runner", "environ", "words"),
    [
        pytest.param(StackRunner(here=("app",), db_node="node-2"), {}, ["runs on node node-2", "run this there"],
                     id="db-on-another-node"),
        pytest.param(StackRunner(here=(), db_node=""), {}, ["no task of shop_db runs", "invoke deploy"],
                     id="no-stack"),
        pytest.param(StackRunner(), {"DB_HOST": "db.example.org"}, ["external (DB_HOST=db.example.org)"],
                     id="external-database"),
    ],
)  # fmt: skip
def test_no_db_task_here_is_one_line_before_anything_runs_in_it(tmp_path, runner, environ, words):
    db = stack_db(tmp_path, runner, **environ)
    with pytest.raises(UserError) as raised:
        db.require_running()
    assert "\n" not in str(raised.value) and all(word in str(raised.value) for word in words), raised.value
    assert not any(call[:2] == ["docker", "exec"] for call in runner.calls)


def test_missing_migrations_run_in_an_app_task_on_this_node(tmp_path):
    app = stack_db(tmp_path, StackRunner()).running_app()
    assert app.argv(["migrate", "--noinput"]) == [
        "docker", "exec", "apptask0123456789", "python", "manage.py", "migrate", "--noinput",
    ]  # fmt: skip
    assert app.hint("migrate --plan") == "docker exec apptask01234 python manage.py migrate --plan (on this node)"
    assert stack_db(tmp_path, StackRunner(here=("db",))).running_app() is None


def test_a_physical_backup_of_the_stacks_database_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError, match=r"invoke db\.backup --swarm"):
        stack_db(tmp_path, StackRunner()).require_physical()


def test_compose_runs_the_missing_migrations_in_the_running_app_service(tmp_path):
    def runner(argv, **options):
        return Result(0, "prod\tshop:prod\t\t\n" if argv[:2] == ["docker", "ps"] else "")

    settings = load_settings(root=tmp_path, environ={"COMPOSE_PROJECT_NAME": "shop"})
    app = Database(Context(settings, runner, say=lambda message: None)).running_app()
    assert app.argv(["migrate"])[-5:] == ["--no-TTY", "prod", "python", "manage.py", "migrate"]
    assert (app.hint("migrate"), app.hint("migrate --plan")) == (
        "invoke manage migrate --stage prod", "invoke manage 'migrate --plan' --stage prod",
    )  # fmt: skip
