"""lifecycle.swarm and lifecycle.deploy without an engine: options -> exact argv, the engine's answers -> decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RecordingRunner

from lifecycle import deploy, swarm
from lifecycle.errors import UserError
from lifecycle.runner import Result

DIGEST = "sha256:" + "a" * 64
IMAGE = f"127.0.0.1:5000/shop@{DIGEST}"
OLD = f"127.0.0.1:5000/shop@sha256:{'b' * 64}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            swarm.init(),
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"],
            id="init binds the swarm to loopback by default",
        ),
        pytest.param(
            swarm.init("10.0.0.5"),
            ["docker", "swarm", "init", "--advertise-addr", "10.0.0.5", "--listen-addr", "10.0.0.5:2377"],
            id="init on another address",
        ),
        pytest.param(swarm.leave(), ["docker", "swarm", "leave", "--force"], id="leave forces (a manager)"),
        pytest.param(
            swarm.swarm_state(),
            ["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}"],
            id="swarm probe",
        ),
        pytest.param(
            swarm.label_node("lifecycle.db", "n1"),
            ["docker", "node", "update", "--label-add", "lifecycle.db=true", "n1"],
            id="label the database node",
        ),
        pytest.param(
            swarm.nodes_labelled("lifecycle.db"),
            ["docker", "node", "ls", "--quiet", "--filter", "node.label=lifecycle.db=true"],
            id="nodes with the database label",
        ),
        pytest.param(
            swarm.stack_deploy("shop", [Path("/c/docker/stack.yaml"), Path("/c/docker/stack.db.yaml")]),
            [
                "docker",
                "stack",
                "deploy",
                "--with-registry-auth",
                "--resolve-image",
                "never",
                "--compose-file",
                "/c/docker/stack.yaml",
                "--compose-file",
                "/c/docker/stack.db.yaml",
                "shop",
            ],
            id="stack deploy with two files, never prunes",
        ),
        pytest.param(swarm.stack_rm("shop"), ["docker", "stack", "rm", "shop"], id="stack rm"),
        pytest.param(
            swarm.stack_networks("shop"),
            ["docker", "network", "ls", "--quiet", "--filter", "label=com.docker.stack.namespace=shop"],
            id="the stack's networks",
        ),
        pytest.param(
            swarm.service_inspect("shop_app"),
            ["docker", "service", "inspect", "--format", "{{json .}}", "shop_app"],
            id="service inspect as json",
        ),
        pytest.param(
            swarm.container_logs("c1"),
            ["docker", "container", "logs", "--tail", "20", "c1"],
            id="the job's last 20 log lines",
        ),
        pytest.param(
            swarm.stopped_task_containers("shop_migrate"),
            [
                "docker",
                "container",
                "ls",
                "--all",
                "--quiet",
                "--filter",
                "label=com.docker.swarm.service.name=shop_migrate",
                "--filter",
                "status=exited",
            ],
            id="the finished job's containers on this node",
        ),
        pytest.param(swarm.service_rm("shop_migrate"), ["docker", "service", "rm", "shop_migrate"], id="service rm"),
        pytest.param(
            swarm.service_rollback("shop_app"),
            ["docker", "service", "rollback", "--detach", "shop_app"],
            id="rollback detached (the task waits itself)",
        ),
        pytest.param(
            swarm.service_scale("shop_app", 4),
            ["docker", "service", "scale", "--detach", "shop_app=4"],
            id="scale",
        ),
        pytest.param(swarm.pull(IMAGE), ["docker", "pull", "--quiet", IMAGE], id="pull the release by digest"),
        pytest.param(
            swarm.secret_create("shop_db_password_0123", Path("/tmp/s/db_password"), "shop"),
            [
                "docker",
                "secret",
                "create",
                "--label",
                "com.docker.stack.namespace=shop",
                "shop_db_password_0123",
                "/tmp/s/db_password",
            ],
            id="secret from a file, never the command line",
        ),
        pytest.param(
            swarm.secret_inspect("shop_x"),
            ["docker", "secret", "inspect", "--format", "{{.ID}}", "shop_x"],
            id="does the secret exist",
        ),
    ],
)
def test_argv(argv, expected):
    assert argv == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param("inactive false ", "not in swarm mode (inactive); run: invoke swarm.init", id="inactive"),
        pytest.param("", "not in swarm mode (no answer)", id="no answer"),
        pytest.param("active false n1", "swarm worker", id="a worker"),
    ],
)
def test_require_manager_refuses_in_one_line(answer, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        swarm.require_manager(answer)


def test_require_manager_returns_the_node_id():
    assert swarm.require_manager("active true n1\n") == "n1"


def test_content_name_changes_with_the_value_only():
    one = swarm.content_name("shop", "DJANGO_SECRET_KEY", "a")
    assert one.startswith("shop_django_secret_key_") and len(one.rsplit("_", 1)[1]) == 12
    assert one == swarm.content_name("shop", "DJANGO_SECRET_KEY", "a")
    assert one != swarm.content_name("shop", "DJANGO_SECRET_KEY", "b")


@pytest.mark.parametrize("value", ["0", "-1", "two", "", "1.5", None])
def test_replicas_must_be_a_whole_number_of_at_least_one(value):
    with pytest.raises(UserError, match="--replicas"):
        deploy.check_replicas(value)


@pytest.mark.parametrize(("value", "expected"), [("1", 1), (3, 3), (" 4 ", 4)])
def test_replicas_accepted(value, expected):
    assert deploy.check_replicas(value) == expected


@pytest.mark.parametrize("stage", ["dev", "test-qa", "stage", "nope"])
def test_only_prod_deploys(stage):
    with pytest.raises(UserError, match="use --stage prod"):
        deploy.check_stage(stage)


def write_releases(root: Path, *records: dict) -> None:
    (root / ".lifecycle").mkdir(exist_ok=True)
    (root / deploy.RELEASES).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_last_release_is_the_newest_of_the_stage(tmp_path):
    write_releases(tmp_path, {"stage": "prod", "image": OLD}, {"stage": "prod", "image": IMAGE},
                   {"stage": "stage", "image": OLD})  # fmt: skip
    assert deploy.last_release(tmp_path, "prod") == IMAGE


def test_no_release_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no release of prod yet; run: invoke release --stage prod"):
        deploy.last_release(tmp_path, "prod")


def test_a_release_by_tag_is_refused(tmp_path):
    write_releases(tmp_path, {"stage": "prod", "image": "shop:prod"})
    with pytest.raises(UserError, match="not name@sha256"):
        deploy.last_release(tmp_path, "prod")


def inspect_json(image=IMAGE, previous=OLD, replicas=3, state="completed", started="t1") -> str:
    return json.dumps(
        [
            {
                "Spec": {
                    "TaskTemplate": {"ContainerSpec": {"Image": image}},
                    "Mode": {"Replicated": {"Replicas": replicas}},
                },
                "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {"Image": previous}}},
                "UpdateStatus": {"State": state, "StartedAt": started, "Message": "update completed"},
            }
        ]
    )


def test_service_state_reads_image_previous_replicas_and_update():
    state = swarm.ServiceState.parse(inspect_json())
    assert (state.image, state.previous_image, state.replicas) == (IMAGE, OLD, 3)
    assert (state.update_state, state.update_started) == ("completed", "t1")


def test_service_state_of_a_service_never_updated():
    state = swarm.ServiceState.parse(json.dumps([{"Spec": {"TaskTemplate": {"ContainerSpec": {"Image": IMAGE}}}}]))
    assert (state.previous_image, state.update_state, state.replicas) == ("", "", 0)


TASKS = (
    f"t1\tRunning\tRunning 5 seconds ago\t{IMAGE}\n"
    f"t2\tRunning\tStarting 1 second ago\t{IMAGE}\n"
    f"t3\tShutdown\tShutdown 3 seconds ago\t{OLD}\n"
)


def test_parse_tasks():
    tasks = swarm.parse_tasks(TASKS)
    assert [(t.id, t.desired, t.status, t.image) for t in tasks] == [
        ("t1", "Running", "running", IMAGE),
        ("t2", "Running", "starting", IMAGE),
        ("t3", "Shutdown", "shutdown", OLD),
    ]


@pytest.mark.parametrize(
    ("lines", "replicas", "expected"),
    [
        pytest.param([f"a\tRunning\tRunning 1s\t{IMAGE}"] * 2, 2, True, id="all running the image"),
        pytest.param(
            [f"a\tRunning\tRunning 1s\t{IMAGE}", f"b\tRunning\tStarting 1s\t{IMAGE}"],
            2,
            False,
            id="one still starting (not healthy yet)",
        ),
        pytest.param(
            [f"a\tRunning\tRunning 1s\t{IMAGE}", f"b\tRunning\tRunning 1s\t{OLD}"], 2, False, id="one on the old digest"
        ),
        pytest.param([f"a\tRunning\tRunning 1s\t{IMAGE}"] * 3, 2, False, id="more than wanted (scaling down)"),
        pytest.param(
            [f"a\tRunning\tRunning 1s\t{IMAGE}", f"b\tShutdown\tRunning 1s\t{OLD}"],
            1,
            True,
            id="an old task being shut down does not count",
        ),
    ],
)
def test_is_converged(lines, replicas, expected):
    state = swarm.ServiceState.parse(inspect_json())
    assert deploy.is_converged(state, swarm.parse_tasks("\n".join(lines)), IMAGE, replicas) is expected


def test_short_names_the_digest():
    assert swarm.short(IMAGE) == "127.0.0.1:5000/shop@sha256:aaaaaaaaaaaa"


# ------------------------------------------------------------------------------------- the deploy, engine mocked
def deployer(make_settings, tmp_path, runner, **environ) -> deploy.Deployer:
    (tmp_path / "docker").mkdir(exist_ok=True)
    (tmp_path / swarm.PROXY_CONFIG).write_text("global\n", encoding="utf-8")
    tls = tmp_path / deploy.TLS_DIR
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "cert.pem").write_text("CERT\n", encoding="utf-8")
    (tls / "key.pem").write_text("KEY\n", encoding="utf-8")
    settings = make_settings(
        COMPOSE_PROJECT_NAME="shop",
        DJANGO_SECRET_KEY="k",
        DB_PASSWORD="p",
        DB_ROOT_PASSWORD="r",
        **environ,
    )
    return deploy.Deployer(settings, runner, sleep=lambda _: None)


def test_deploy_outside_swarm_mode_runs_nothing_else(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "info"): Result(0, "inactive false \n")})
    write_releases(tmp_path, {"stage": "prod", "image": IMAGE})
    with pytest.raises(UserError, match=r"run: invoke swarm\.init"):
        deployer(make_settings, tmp_path, runner).deploy("prod", 2)
    assert runner.calls == [swarm.swarm_state()]


def test_deploy_of_a_digest_the_registry_lost_changes_nothing(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "info"): Result(0, "active true n1"), ("docker", "pull"): Result(1)})
    write_releases(tmp_path, {"stage": "prod", "image": IMAGE})
    with pytest.raises(UserError, match=r"the registry no longer has .*sha256:aaaaaaaaaaaa"):
        deployer(make_settings, tmp_path, runner).deploy("prod", 2)
    assert runner.calls[-1] == swarm.pull(IMAGE)


def test_a_failed_migration_stops_before_the_app_with_the_job_logs(make_settings, tmp_path):
    runner = RecordingRunner(
        {
            ("docker", "info"): Result(0, "active true n1"),
            ("docker", "node", "ls"): Result(0, "n1\n"),
            ("docker", "service", "ps"): Result(0, f"j1\tShutdown\tFailed 1 second ago\t{IMAGE}\n"),
            ("docker", "container", "ls"): Result(0, "c1\n"),
            ("docker", "service", "inspect"): Result(1),
        }
    )
    write_releases(tmp_path, {"stage": "prod", "image": IMAGE})
    d = deployer(make_settings, tmp_path, runner, DB_HOST="external.example")
    with pytest.raises(UserError, match="the migrate job failed; nothing else was changed"):
        d.deploy("prod", 2)
    deploys = [call for call in runner.calls if call[:3] == ["docker", "stack", "deploy"]]
    assert [call[-2] for call in deploys] == [str(tmp_path / swarm.MIGRATE_FILE)]  # never stack.yaml
    assert swarm.container_logs("c1") in runner.calls
    assert runner.calls[-3:] == [
        swarm.service_rm("shop_migrate"),
        swarm.stopped_task_containers("shop_migrate"),
        swarm.container_rm("c1"),
    ]


def test_secrets_are_named_by_content_and_never_on_a_command_line(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "secret", "inspect"): Result(1)})
    d = deployer(make_settings, tmp_path, runner)
    names = d.ensure_secrets()
    assert set(names) == {"DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD", "TLS_PEM"}
    creates = [call for call in runner.calls if call[:3] == ["docker", "secret", "create"]]
    assert [call[-2] for call in creates] == list(names.values())
    assert not any(value in " ".join(call) for call in runner.calls for value in ("CERT", "KEY\n"))
    assert all(not any(part in {"k", "p", "r"} for part in call) for call in runner.calls)


def test_an_external_database_needs_no_root_password_and_no_db_file(make_settings, tmp_path):
    d = deployer(make_settings, tmp_path, RecordingRunner(), DB_HOST="db.example.com")
    assert "DB_ROOT_PASSWORD" not in deploy.secret_values(d.settings)
    assert deploy.stack_files(d.settings) == [tmp_path / swarm.STACK_FILE]


def test_missing_tls_certificate_is_one_line(make_settings, tmp_path):
    d = deployer(make_settings, tmp_path, RecordingRunner())
    (tmp_path / deploy.TLS_DIR / "key.pem").unlink()
    with pytest.raises(UserError, match="no TLS certificate"):
        deploy.secret_values(d.settings)
