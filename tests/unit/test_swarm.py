"""lifecycle.commands.swarm and lifecycle.deploy without an engine: options -> exact argv, answers -> decisions."""

from __future__ import annotations

import base64
import json
import socket
import stat
from pathlib import Path

import pytest

from lifecycle import deploy, deploylock, maintenance, probes, tls
from lifecycle.commands import swarm
from lifecycle.context import Clock, Context
from lifecycle.errors import UserError
from lifecycle.release import Release, ReleaseLog
from lifecycle.runner import Result
from lifecycle.settings import load_settings
from lifecycle.stages import DEV, PROD, STAGE, TEST_QA
from tests.helpers.recording import RecordingRunner

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
            swarm.standalone_containers(),
            ["docker", "ps", "--no-trunc", "--filter", "is-task=false", "--format", "{{.ID}} {{.Networks}}"],
            id="running containers that are not swarm tasks, with their networks",
        ),
        pytest.param(swarm.restart(["a", "b"]), ["docker", "restart", "a", "b"], id="restart"),
        pytest.param(
            swarm.swarm_state(),
            [
                "docker",
                "info",
                "--format",
                "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}} {{.Swarm.Nodes}}",
            ],
            id="swarm probe",
        ),
        pytest.param(
            swarm.label_node("lifecycle.db", "n1"),
            ["docker", "node", "update", "--label-add", "lifecycle.db=true", "n1"],
            id="label the database node",
        ),
        pytest.param(
            swarm.unlabel_node("lifecycle.db", "n1"),
            ["docker", "node", "update", "--label-rm", "lifecycle.db", "n1"],
            id="take the database label off again",
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
            swarm.stack_objects("secret", "shop"),
            ["docker", "secret", "ls", "--quiet", "--filter", "label=com.docker.stack.namespace=shop"],
            id="the stack's secrets",
        ),
        pytest.param(
            swarm.stack_objects("volume", "shop"),
            ["docker", "volume", "ls", "--quiet", "--filter", "label=com.docker.stack.namespace=shop"],
            id="the stack's volumes",
        ),
        pytest.param(
            swarm.stack_containers("shop"),
            ["docker", "container", "ls", "--all", "--quiet", "--filter", "label=com.docker.stack.namespace=shop"],
            id="the stack's containers, stopped ones too",
        ),
        pytest.param(swarm.objects_rm("config", "c1", "c2"), ["docker", "config", "rm", "c1", "c2"], id="configs rm"),
        pytest.param(
            swarm.service_inspect("shop_app"),
            ["docker", "service", "inspect", "--format", "{{json .}}", "shop_app"],
            id="service inspect as json",
        ),
        pytest.param(
            swarm.service_tasks("shop_app"),
            [
                "docker",
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.ID}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Image}}\t{{.Error}}",
                "shop_app",
            ],
            id="every task with its image and error",
        ),
        pytest.param(
            swarm.task_exec("c1", ["python", "-m", "lifecycle_site.scheduler", "last"]),
            ["docker", "exec", "c1", "python", "-m", "lifecycle_site.scheduler", "last"],
            id="the scheduler in the stack's task on this node",
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


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", " 4 "])
def test_replicas_must_be_a_whole_number_of_at_least_one(make_settings, value):
    """--replicas goes through the settings' override, and a bad value is named by the option."""
    with pytest.raises(UserError) as error:
        make_settings().override({"DEPLOY_REPLICAS": "--replicas"}, DEPLOY_REPLICAS=value)
    assert str(error.value) == (
        f"--replicas {value!r} is not a count of at least 1; set it to e.g. 2 (DEPLOY_REPLICAS)"
    )


@pytest.mark.parametrize(
    ("environ", "option", "expected"), [({}, None, 2), ({"DEPLOY_REPLICAS": "5"}, None, 5), ({}, "3", 3)]
)
def test_replicas_from_the_setting_or_the_option(make_settings, environ, option, expected):
    settings = make_settings(**environ).override({"DEPLOY_REPLICAS": "--replicas"}, DEPLOY_REPLICAS=option)
    assert settings.typed("DEPLOY_REPLICAS") == expected


@pytest.mark.parametrize("stage", [DEV, TEST_QA, STAGE])
def test_only_prod_deploys(stage):
    with pytest.raises(UserError, match="use --stage prod"):
        deploy.check_stage(stage)


def write_releases(root: Path, *records: tuple[str, str]) -> None:
    """Releases as `invoke release` records them: (stage, reference) each."""
    log = ReleaseLog(root / ".lifecycle" / "releases.jsonl")
    for stage, reference in records:
        log.append(Release(reference, stage, "tag", "0" * 64, "c" * 40, False, "2026-01-01T00:00:00Z", "base"))


def test_last_release_is_the_newest_of_the_stage(tmp_path):
    write_releases(tmp_path, ("prod", OLD), ("prod", IMAGE), ("stage", OLD))
    assert deploy.last_release(load_settings(root=tmp_path, environ={}), PROD) == IMAGE


def test_no_release_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no release of prod yet; run: invoke release --stage prod"):
        deploy.last_release(load_settings(root=tmp_path, environ={}), PROD)


def test_a_release_by_tag_is_refused(tmp_path):
    write_releases(tmp_path, ("prod", "shop:prod"))
    with pytest.raises(UserError, match="not name@sha256"):
        deploy.last_release(load_settings(root=tmp_path, environ={}), PROD)


def inspect_json(image=IMAGE, previous=OLD, replicas=3, state="completed", started="t1") -> str:
    return json.dumps(
        [
            {
                "Spec": {
                    "TaskTemplate": {"ContainerSpec": {"Image": image}},
                    "Mode": {"Replicated": {"Replicas": replicas}},
                },
                "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {"Image": previous}}},
                "UpdateStatus": {
                    "State": state,
                    "StartedAt": started,
                    "CompletedAt": "t2",
                    "Message": "update completed",
                },
            }
        ]
    )


def test_service_state_reads_image_previous_replicas_and_update():
    state = swarm.ServiceState.parse(inspect_json())
    assert (state.image, state.previous_image, state.replicas) == (IMAGE, OLD, 3)
    assert (state.update_state, state.update_started, state.update_completed) == ("completed", "t1", "t2")


def test_service_state_of_a_service_never_updated():
    state = swarm.ServiceState.parse(json.dumps([{"Spec": {"TaskTemplate": {"ContainerSpec": {"Image": IMAGE}}}}]))
    assert (state.previous_image, state.update_state, state.replicas) == ("", "", 0)


TASKS = (
    f"t1\tRunning\tRunning 5 seconds ago\t{IMAGE}\n"
    f"t2\tRunning\tStarting 1 second ago\t{IMAGE}\n"
    f"t3\tShutdown\tShutdown 3 seconds ago\t{OLD}\n"
)


def test_parse_tasks():
    tasks = swarm.parse_tasks(TASKS + f"t4\tShutdown\tFailed 2 seconds ago\t{IMAGE}\tunhealthy container\n")
    assert tasks[-1].error == "unhealthy container"
    tasks = tasks[:-1]
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


def test_https_health_is_a_no_when_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        assert probes.https_health_answers(port, timeout=1) is False


def test_short_names_the_digest():
    assert swarm.short(IMAGE) == "127.0.0.1:5000/shop@sha256:aaaaaaaaaaaa"


# ------------------------------------------------------------------------------------- the deploy, engine mocked
def deployer(make_settings, tmp_path, runner, **environ: str) -> deploy.Deployer:
    """A deploy of checkout tmp_path, with the user's own certificate (TLS_CERT_FILE) so no openssl runs."""
    (tmp_path / "docker").mkdir(exist_ok=True)
    (tmp_path / swarm.PROXY_CONFIG).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / swarm.PROXY_CONFIG).write_text("global\n", encoding="utf-8")
    (tmp_path / maintenance.PLAIN_PAGE).write_text("<h1>maintenance</h1>\n", encoding="utf-8")
    certificate = tls.local_files(tmp_path)
    certificate.cert.parent.mkdir(parents=True, exist_ok=True)
    certificate.cert.write_text("CERT\n", encoding="utf-8")
    certificate.key.write_text("KEY\n", encoding="utf-8")
    defaults = {"DJANGO_SECRET_KEY": "k", "DB_PASSWORD": "p", "DB_ROOT_PASSWORD": "r", "COMPOSE_PROJECT_NAME": "shop"}
    certificate_files = {"TLS_CERT_FILE": str(certificate.cert), "TLS_KEY_FILE": str(certificate.key)}
    # No signing key in tmp_path: the transition setting lets these tests reach the swarm steps (test_signing.py
    # covers the signature check that comes first).
    unsigned = {"ALLOW_UNSIGNED": "true"}
    settings = make_settings(**{**defaults, **certificate_files, **unsigned, **environ})
    return deploy.Deployer(Context(settings, runner, clock=Clock(sleep=lambda _: None)))


@pytest.mark.parametrize(
    ("listing", "affected"),
    [
        pytest.param("a shop_default\nb bridge\n", ["a"], id="a compose network, the default bridge"),
        pytest.param("a bridge,shop_default\nb host\nc none\n", ["a"], id="one user network among others"),
        pytest.param("", [], id="nothing running"),
    ],
)
def test_on_user_networks_names_the_containers_whose_dns_names_leaving_drops(listing, affected):
    assert swarm.on_user_networks(listing) == affected


def test_leaving_swarm_restarts_the_containers_on_user_networks(make_settings, tmp_path):
    listing = "c1 shop_default\nc2 bridge\n"
    runner = RecordingRunner({("docker", "info"): Result(0, "active true n1"), ("docker", "ps"): Result(0, listing)})
    deployer(make_settings, tmp_path, runner).leave_swarm(yes=True)
    assert runner.calls == [swarm.swarm_state(), swarm.standalone_containers(), swarm.leave(), swarm.restart(["c1"])]


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        ("active true n1 1", ""),
        ("active true n1 3", "this engine manages a swarm of 3 nodes, which leaving would break; move its work away "
                             "and demote it (docker node demote) or remove the other nodes first"),
        ("active false n2 0", ""),
        ("inactive false  0", ""),
        ("active true n1", ""),
        ("", ""),
    ],
    ids=["single-node-manager", "manager-of-three", "worker", "not-in-swarm", "old-answer", "no-answer"],
)  # fmt: skip
def test_leave_refuses_only_a_manager_of_several_nodes(state, refusal):
    assert swarm.leave_refusal(state) == refusal


@pytest.mark.parametrize(
    ("yes", "answer", "left"),
    [(True, None, True), (False, "shop", True), (False, "shop2", False), (False, "", False), (False, None, False)],
    ids=["--yes", "typed-name", "wrong-name", "empty", "no-terminal"],
)
def test_leave_and_rm_need_the_project_name_or_yes(make_settings, tmp_path, yes, answer, left):
    for action, command in [("leave_swarm", swarm.leave()), ("remove", swarm.stack_rm("shop"))]:
        runner = RecordingRunner({("docker", "info"): Result(0, "active true n1 1")})
        ask = (lambda prompt: answer) if answer is not None else None
        d = deployer(make_settings, tmp_path, runner, COMPOSE_PROJECT_NAME="shop")
        if left:
            getattr(d, action)(yes=yes, ask=ask)
        else:
            with pytest.raises(UserError) as error:
                getattr(d, action)(yes=yes, ask=ask)
            assert "\n" not in str(error.value) and "nothing was changed" in str(error.value)
            if answer is None:
                assert "of shop; add --yes to confirm" in str(error.value)
        assert (command in runner.calls) is left, (action, runner.calls)


def test_leave_on_a_manager_of_three_nodes_changes_nothing(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "info"): Result(0, "active true n1 3")})
    with pytest.raises(UserError, match=r"manages a swarm of 3 nodes.*; nothing was changed$"):
        deployer(make_settings, tmp_path, runner).leave_swarm(yes=True)
    assert runner.calls == [swarm.swarm_state()]


def test_leaving_swarm_outside_swarm_mode_does_nothing(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "info"): Result(0, "inactive false \n")})
    deployer(make_settings, tmp_path, runner).leave_swarm()
    assert runner.calls == [swarm.swarm_state()]


@pytest.mark.parametrize(
    ("lines", "running"),
    [
        pytest.param([f"a\tRunning\tRunning 1s\t{IMAGE}"] * 3, True, id="one on every node, all running"),
        pytest.param(
            [f"a\tRunning\tRunning 1s\t{IMAGE}", f"b\tRunning\tStarting 1s\t{IMAGE}"],
            False,
            id="one node still starting",
        ),
        pytest.param(
            [f"a\tRunning\tRunning 1s\t{IMAGE}", f"b\tShutdown\tFailed 1s\t{IMAGE}"],
            True,
            id="a past task does not count",
        ),
        pytest.param([f"a\tShutdown\tComplete 1s\t{IMAGE}"], False, id="none wanted running"),
        pytest.param([], False, id="no task yet"),
    ],
)
def test_all_running_waits_for_every_task_swarm_wants_running(lines, running):
    assert swarm.all_running(swarm.parse_tasks("\n".join(lines))) is running


def test_deploy_outside_swarm_mode_runs_nothing_else(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "info"): Result(0, "inactive false \n")})
    write_releases(tmp_path, ("prod", IMAGE))
    with pytest.raises(UserError, match=r"run: invoke swarm\.init"):
        deployer(make_settings, tmp_path, runner).deploy(PROD, 2)
    assert runner.calls == [swarm.swarm_state()]


def test_deploy_of_a_digest_the_registry_lost_changes_nothing(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "info"): Result(0, "active true n1"), ("docker", "pull"): Result(1)})
    write_releases(tmp_path, ("prod", IMAGE))
    with pytest.raises(UserError, match=r"the registry no longer has .*sha256:aaaaaaaaaaaa"):
        deployer(make_settings, tmp_path, runner).deploy(PROD, 2)
    assert runner.calls[-2:] == [swarm.pull(IMAGE), swarm.lock_inspect("shop_deploy-lock")]  # then the lock's release


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
    write_releases(tmp_path, ("prod", IMAGE))
    d = deployer(make_settings, tmp_path, runner, DB_HOST="external.example")
    with pytest.raises(UserError, match="the migrate job failed; nothing else was changed"):
        d.deploy(PROD, 2)
    deploys = [call for call in runner.calls if call[:3] == ["docker", "stack", "deploy"]]
    assert [call[-2] for call in deploys] == [str(tmp_path / swarm.MIGRATE_FILE)]  # never stack.yaml
    assert swarm.container_logs("c1") in runner.calls
    assert runner.calls[-4:] == [
        swarm.service_rm("shop_migrate"),
        swarm.stopped_task_containers("shop_migrate"),
        swarm.container_rm("c1"),
        swarm.lock_inspect("shop_deploy-lock"),  # then the lock's release
    ]


def test_secrets_are_named_by_content_and_never_on_a_command_line(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "secret", "inspect"): Result(1)})
    names = deployer(make_settings, tmp_path, runner).ensure_secrets()
    assert set(names) == {"DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD", "TLS_CERT", "TLS_KEY"}
    creates = [call for call in runner.calls if call[:3] == ["docker", "secret", "create"]]
    assert [call[-2] for call in creates] == list(names.values())
    assert all(not any(part in {"k", "p", "r", "CERT\n", "KEY\n"} for part in call) for call in runner.calls)


def test_a_changed_value_is_a_new_secret(make_settings, tmp_path):
    first = deployer(make_settings, tmp_path, RecordingRunner()).ensure_secrets()
    second = deployer(make_settings, tmp_path, RecordingRunner(), DJANGO_SECRET_KEY="changed").ensure_secrets()
    assert first["DJANGO_SECRET_KEY"] != second["DJANGO_SECRET_KEY"]
    assert first["DB_PASSWORD"] == second["DB_PASSWORD"]


def test_an_external_database_needs_no_root_password_and_no_db_file(make_settings, tmp_path):
    d = deployer(make_settings, tmp_path, RecordingRunner(), DB_HOST="db.example.com")
    assert "DB_ROOT_PASSWORD" not in deploy.secret_values(d.settings, tls.cert_files(d.settings))
    assert deploy.stack_files(d.settings) == [tmp_path / swarm.STACK_FILE]


def test_missing_tls_certificate_is_one_line(make_settings, tmp_path):
    d = deployer(make_settings, tmp_path, RecordingRunner())
    certificate = tls.cert_files(d.settings)
    certificate.key.unlink()
    with pytest.raises(UserError, match="no TLS certificate file"):
        deploy.secret_values(d.settings, certificate)


SALT = bytes(range(32))


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("shop", "DB_PASSWORD", "hunter2", SALT), ("shop", "DB_PASSWORD", "hunter2", SALT), True),
        (("shop", "DB_PASSWORD", "hunter2", SALT), ("shop", "DB_PASSWORD", "hunter3", SALT), False),
        (("shop", "DB_PASSWORD", "hunter2", SALT), ("shop", "DB_PASSWORD", "hunter2", bytes(32)), False),
        (("shop", "DB_PASSWORD", "hunter2", SALT), ("shop2", "DB_PASSWORD", "hunter2", SALT), False),
        (("shop", "DB_PASSWORD", "hunter2", SALT), ("shop", "DB_ROOT_PASSWORD", "hunter2", SALT), False),
        (("shop", "DB_PASSWORD", "hunter2", SALT), ("shop", "DB_PASSWORD", "hunter2", None), False),
    ],
    ids=["same-value-same-name", "new-value", "other-salt", "other-stack", "other-variable", "unsalted-guess"],
)
def test_a_secret_name_is_stable_per_value_and_salt_and_confirms_no_guess(a, b, same):
    assert (swarm.content_name(*a) == swarm.content_name(*b)) is same
    name = swarm.content_name(*a)
    assert name.startswith(f"{a[0]}_{a[1].lower()}_") and len(name.rsplit("_", 1)[1]) == 12


def test_the_salt_is_made_once_0600_and_read_back(tmp_path):
    salt = swarm.secret_salt(tmp_path)
    path = tmp_path / swarm.SALT_FILE
    assert len(salt) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert swarm.secret_salt(tmp_path) == salt
    assert swarm.secret_salt(tmp_path / "other") != salt  # another checkout, another salt


def test_a_dry_run_makes_no_salt(tmp_path):
    assert swarm.secret_salt(tmp_path, create=False) == b"dry-run"
    assert not (tmp_path / swarm.SALT_FILE).exists()


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda path: path.write_text("short\n"), "is damaged; remove it"),
        (lambda path: path.write_text("g" * 64), "is damaged; remove it"),
        (lambda path: path.symlink_to(path.parent / "elsewhere"), "is not a plain file; remove it"),
    ],
    ids=["short", "not-hex", "symlink"],
)
def test_a_bad_salt_file_is_one_line_and_never_followed(tmp_path, prepare, message):
    path = tmp_path / swarm.SALT_FILE
    path.parent.mkdir(parents=True)
    prepare(path)
    with pytest.raises(UserError, match=message) as error:
        swarm.secret_salt(tmp_path)
    assert "\n" not in str(error.value)
    assert not (path.parent / "elsewhere").exists()


def test_deploy_status_names_the_lock_holder_and_the_last_deploys(make_settings, tmp_path, capsys):
    holder = deploylock.Holder("ann", "ci-7", 42, "2026-12-04T07:59:00Z", "deploy x")
    data = base64.b64encode(holder.to_json().encode()).decode()
    runner = RecordingRunner(
        {
            ("docker", "info"): Result(0, "active true n1"),
            ("docker", "service", "inspect"): Result(1),
            ("docker", "config", "inspect"): Result(0, json.dumps({"Spec": {"Data": data}})),
        }
    )
    entry = deploylock.Entry("2026-12-04T07:00:00Z", "bob", "laptop", 7, "deploy", "shop@sha256:aaaa", "ok")
    deploylock.append_log(tmp_path, entry)
    deployer(make_settings, tmp_path, runner).status()
    out = capsys.readouterr().out
    assert "deploy lock: held by ann@ci-7 (pid 42) since 2026-12-04T07:59:00Z: deploy x" in out
    assert "2026-12-04T07:00:00Z bob@laptop deploy shop@sha256:aaaa: ok" in out
