"""tasks.py through Invoke's MockContext: the exact commands each task runs, and what it refuses."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from invoke import Config, MockContext, Result
from invoke.exceptions import Exit

from lifecycle import deps, local, registry
from lifecycle.cli import tasks
from lifecycle.cli.tasks import checkout as checkout_tasks
from lifecycle.cli.tasks import common
from lifecycle.cli.tasks import operate as operate_tasks
from lifecycle.cli.tasks import release as release_tasks
from lifecycle.cli.tasks import suite as suite_tasks
from lifecycle.settings import ROOT, Settings, load_settings
from lifecycle.stages import DEV, PROD, STAGES, Stage

CHECKOUT = Path(__file__).resolve().parents[2]
PREFLIGHT = (["docker", "version", "--format", "{{.Server.Version}}"], ["docker", "compose", "version", "--short"])
UNKNOWN_STAGE = "error: unknown stage 'qa'; use one of: dev, test-qa, stage, prod"
HEALTHY_DB = '{"Status": "running", "Health": {"Status": "healthy", "Log": []}}'
DENIED_DB = (
    '{"Status": "running", "Health": {"Status": "starting", "Log": [{"ExitCode": 1, "Output": '
    "\"ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)\\n\"}]}}"
)


# What stage and prod need to start (lifecycle/secretfiles.refusal).
SECRETS = {"DJANGO_SECRET_KEY": "k", "DB_PASSWORD": "p", "DB_ROOT_PASSWORD": "r"}


@pytest.fixture
def make_checkout(tmp_path, monkeypatch):
    """`make_checkout(**environ)`: a minimal tmp checkout that `common.load_settings` resolves to.

    APP_PORT counts as free, whatever listens on this machine (tests that need it taken patch it again).
    """
    monkeypatch.setattr(local, "port_is_free", lambda port: True)

    def make(**environ: str) -> Settings:
        root = tmp_path / "checkout"
        (root / "django_site").mkdir(parents=True, exist_ok=True)
        (root / "manage.py").write_text("import sys\n")
        (root / "django_site" / "__init__.py").write_text("")
        # Hash-locked, as django_site's are: the build copies them (lifecycle/projectlock.py), never compiles.
        (root / "requirements").mkdir(exist_ok=True)
        for lock in ("runtime.txt", "test.txt"):
            shutil.copyfile(ROOT / "requirements" / lock, root / "requirements" / lock)
        environ = {"PROJ_NAME": "shop", **environ}
        LAST_CHECKOUT["project"] = load_settings(root=root, environ=environ).project_name
        monkeypatch.setattr(common, "load_settings", lambda: load_settings(root=root, environ=environ))
        return load_settings(root=root, environ=environ)

    return make


LAST_CHECKOUT = {"project": ""}  # the compose project of the last make_checkout()
OWNER_QUERY = r"docker image inspect --format '\{\{index \.Config\.Labels \"io\.lifecycle\.compose-project"
VOLUME_EXISTS = {r"docker volume inspect --format ": Result("shop_db-data\n")}


def context(answers: dict | None = None, dry: bool = False) -> MockContext:
    """A MockContext where the engine and Compose v2 answer and every other command succeeds silently.

    `answers` maps a regex (matched against the start of the shell command) to a Result, ahead of the defaults.
    """
    run = {re.compile(pattern): result for pattern, result in (answers or {}).items()}
    run.setdefault(re.compile(r"docker inspect --format '\{\{json .State\}\}'"), Result(HEALTHY_DB))
    # The images are this checkout's; the database volume is new (up then starts everything in one wait).
    run.setdefault(re.compile(OWNER_QUERY), Result(LAST_CHECKOUT["project"] + "\n"))
    run.setdefault(re.compile(r"docker volume inspect --format "), Result(exited=1))
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


def build_with_sbom(settings: Settings, stage: str, *flags: str) -> list[str]:
    return build_argv(settings, "*", "build", *flags, Stage.parse(stage).sbom, stage)


def up_argvs(settings: Settings, stage: str, wait_timeout: str = "180") -> list[list[str]]:
    """What `up` runs after any build when the db volume exists: db first (watched, so a refused login is seen
    early), then the stage (stack_calls leaves out the `ps` that finds the db container)."""
    return [
        compose_argv(settings, stage, "up", "--detach", "--no-build", "db"),
        compose_argv(settings, stage, "up", "--detach", "--no-build", "--wait", "--wait-timeout", wait_timeout),
    ]


def owned(settings: Settings) -> dict[str, Result]:
    """Answers that make every stage image present and built by this checkout."""
    return {r"docker image inspect --format '\{\{index \.Config\.Labels \"io\.lifecycle\.compose-project": Result(
        settings.project_name + "\n")}  # fmt: skip


def compose_calls(c: MockContext) -> list[list[str]]:
    return [argv for argv in commands(c) if argv[:3] == ["docker", "compose", "--project-name"] or argv[:5] == [
        "docker", "--log-level", "error", "compose", "--project-name"]]  # fmt: skip


def docker_ps_calls(c: MockContext) -> list[list[str]]:
    return [argv for argv in commands(c) if argv[:2] == ["docker", "ps"]]


def service_ps_argv(settings: Settings, service: str) -> list[str]:
    """What `probes.service_container` asks: the service's container, running or not, never a one-off."""
    return ["docker", "ps", "--all", "--no-trunc",
            "--filter", f"label=com.docker.compose.project={settings.project_name}",
            "--filter", f"label=com.docker.compose.service={service}",
            "--filter", "label=com.docker.compose.oneoff=False",
            "--format", "{{.ID}} {{.Image}} {{.State}}"]  # fmt: skip


def stack_calls(c: MockContext) -> list[list[str]]:
    """compose_calls without the database probes `up` makes (the volume's server record: ps, exec)."""
    return [argv for argv in compose_calls(c) if argv[argv.index("--profile") + 2] not in ("ps", "exec")]


# -------------------------------------------------------------------------------------------------- build


def test_build_prod_without_cache_runs_the_exact_compose_build(make_checkout):
    settings = make_checkout()
    c = context()
    checkout_tasks.build(c, stage="prod", no_cache=True)
    expected = build_with_sbom(settings, "prod", "--no-cache")
    # The first build knows no SBOM yet: once it is copied out, prod is built again (from cache) with its label.
    assert compose_calls(c) == [expected, build_argv(settings, "prod", "build", "prod")]
    build_call = c.run.call_args_list[commands(c).index(expected)]
    assert "COMPOSE_BAKE" not in build_call.kwargs["env"]
    assert re.fullmatch(r"[0-9a-f]{64}", build_call.kwargs["env"]["ZIP_SHA256"])
    assert settings.zip_path.is_file()


SBOM_DOCUMENT = '{"bomFormat": "CycloneDX", "components": []}\n'


def sbom_context(image_id: str) -> MockContext:
    image = re.escape(f"{LAST_CHECKOUT['project']}:sbom-runtime")  # the checkout's own image name
    return context({
        rf"docker image inspect --format '\{{\{{.Id\}}\}}' {image}": Result(f"{image_id}\n"),
        rf"docker run --rm --network none --entrypoint cat {image} /sbom.cdx.json": Result(SBOM_DOCUMENT),
    })  # fmt: skip


def test_build_copies_the_sbom_to_reports_and_labels_the_image_with_its_sha256(make_checkout):
    settings = make_checkout()
    c = sbom_context("sha256:one")
    checkout_tasks.build(c, stage="prod")
    assert (settings.root / "reports" / "sbom-prod.json").read_text() == SBOM_DOCUMENT
    labelled = c.run.call_args_list[commands(c).index(build_argv(settings, "prod", "build", "prod"))]
    assert labelled.kwargs["env"]["SBOM_SHA256"] == hashlib.sha256(SBOM_DOCUMENT.encode()).hexdigest()


def test_a_rebuild_with_the_same_sbom_image_is_one_build_and_copies_nothing(make_checkout):
    settings = make_checkout()
    checkout_tasks.build(sbom_context("sha256:one"), stage="prod")
    c = sbom_context("sha256:one")
    checkout_tasks.build(c, stage="prod")
    assert compose_calls(c) == [build_with_sbom(settings, "prod")]
    assert c.run.call_args_list[commands(c).index(build_with_sbom(settings, "prod"))].kwargs["env"][
        "SBOM_SHA256"] == hashlib.sha256(SBOM_DOCUMENT.encode()).hexdigest()  # fmt: skip
    assert not [argv for argv in commands(c) if argv[:2] == ["docker", "run"]]


def test_a_new_sbom_image_is_copied_out_again(make_checkout):
    settings = make_checkout()
    checkout_tasks.build(sbom_context("sha256:one"), stage="prod")
    (settings.root / "reports" / "sbom-prod.json").write_text("old")
    c = sbom_context("sha256:two")
    checkout_tasks.build(c, stage="prod")
    assert (settings.root / "reports" / "sbom-prod.json").read_text() == SBOM_DOCUMENT
    assert compose_calls(c) == [build_with_sbom(settings, "prod")]  # same document, same label: no relabel


def test_build_runs_preflight_first_and_checks_the_base_image(make_checkout):
    make_checkout()
    c = context()
    checkout_tasks.build(c, stage="dev")
    argvs = commands(c)
    assert argvs[:2] == list(PREFLIGHT)
    assert ["docker", "image", "inspect", "--format", "{{.Id}}", "python:3.12-slim"] in argvs


def test_build_dev_does_not_zip(make_checkout):
    settings = make_checkout()
    c = context()
    checkout_tasks.build(c)
    assert compose_calls(c) == [build_with_sbom(settings, "dev")]
    assert not settings.zip_path.exists()


def test_build_unknown_stage_exits_with_one_line_and_builds_nothing(make_checkout):
    settings = make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.build(c, stage="qa")
    assert (error.value.message, error.value.code) == (UNKNOWN_STAGE, 1)
    assert compose_calls(c) == []
    assert "build" not in [word for argv in commands(c) for word in argv]
    assert not settings.zip_path.exists()
    assert not (settings.root / "docker").exists()  # certs were not staged either


def test_build_refuses_when_the_engine_is_down(make_checkout):
    settings = make_checkout()
    c = context({r"docker version ": Result(exited=1)})
    with pytest.raises(Exit) as error:
        checkout_tasks.build(c, stage="prod")
    assert error.value.message.startswith("error: the Docker engine is not reachable (docker version failed); ")
    assert "\n" not in error.value.message
    assert commands(c) == list(PREFLIGHT)
    assert not settings.zip_path.exists()


def test_build_with_a_missing_base_image_that_cannot_be_pulled_exits(make_checkout):
    make_checkout()
    c = context({r"docker image inspect ": Result(exited=1), r"docker pull ": Result(exited=1)})
    with pytest.raises(Exit) as error:
        checkout_tasks.build(c, stage="dev")
    assert error.value.message.startswith("error: base image python:3.12-slim is neither present nor pullable")
    assert compose_calls(c) == []


# --------------------------------------------------------------------------------------------------- down


def test_down_runs_compose_down_keeping_volumes(make_checkout):
    settings = make_checkout()
    c = context()
    checkout_tasks.down(c)
    assert compose_calls(c) == [compose_argv(settings, "*", "down", "--remove-orphans")]


def test_down_volumes_without_yes_and_no_terminal_exits_and_removes_nothing(make_checkout, monkeypatch):
    settings = make_checkout()
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.down(c, volumes=True)
    assert error.value.message == (
        f"error: --volumes deletes the database of {settings.project_name}; add --yes to confirm (nothing was changed)"
    )
    assert error.value.code == 1
    assert compose_calls(c) == []


def test_down_volumes_with_yes_and_no_backup_deletes_the_volume_and_says_so(make_checkout, capsys):
    settings = make_checkout()
    c = context(VOLUME_EXISTS)
    checkout_tasks.down(c, volumes=True, yes=True, no_backup=True)
    assert compose_calls(c) == [compose_argv(settings, "*", "down", "--remove-orphans", "--volumes")]
    assert "safety backup skipped (--no-backup)" in capsys.readouterr().err


def test_down_volumes_backs_up_first_and_a_failed_backup_deletes_nothing(make_checkout):
    settings = make_checkout()
    c = context({r"docker compose .* up --detach --wait db": Result(exited=1), **VOLUME_EXISTS})
    with pytest.raises(Exit):
        checkout_tasks.down(c, volumes=True, yes=True)
    assert compose_argv(settings, "*", "up", "--detach", "--wait", "db") in compose_calls(c)
    assert not [argv for argv in compose_calls(c) if "down" in argv]


# ----------------------------------------------------------------------------------------------------- up


def test_up_prod_without_secret_key_exits_and_runs_nothing(make_checkout):
    settings = make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="prod")
    assert "DJANGO_SECRET_KEY" in error.value.message
    assert error.value.message.startswith("error: prod needs DJANGO_SECRET_KEY, DB_PASSWORD, DB_ROOT_PASSWORD; ")
    assert commands(c) == list(PREFLIGHT)  # only the read-only probes
    assert not settings.zip_path.exists()


def test_up_test_qa_points_to_invoke_qa_and_runs_nothing(make_checkout):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="test-qa")
    assert error.value.message == (
        "error: test-qa runs the tests and exits, it is not a service to keep up; use invoke qa"
    )
    assert commands(c) == list(PREFLIGHT)


def test_up_prod_builds_then_waits_for_health_and_https(make_checkout, monkeypatch):
    settings = make_checkout(**SECRETS, HTTPS_PORT="8444")
    waited = []
    monkeypatch.setattr(local.tls, "wait_for_https", lambda port, path: waited.append((port, path)))
    c = context()
    checkout_tasks.up(c, stage="prod", wait_timeout="60")
    assert stack_calls(c) == [
        build_with_sbom(settings, "prod"),
        build_argv(settings, "prod", "build", "prod"),
        compose_argv(settings, "prod", "up", "--detach", "--no-build", "--wait", "--wait-timeout", "60"),
    ]
    assert waited == [(8444, "/health")]
    (up_env,) = [call.kwargs["env"] for call in c.run.call_args_list if " up --detach" in call.args[0]]
    tls_dir = settings.root / ".lifecycle" / "tls"
    assert (up_env["TLS_CERT_FILE"], up_env["TLS_KEY_FILE"]) == (
        str(tls_dir / "server.crt"),
        str(tls_dir / "server.key"),
    )
    assert up_env["PROXY_IMAGE"] == "haproxy:3.0"  # present, as far as the mocked engine says
    openssl = [argv for argv in commands(c) if argv[0] == "openssl"]
    assert [argv[1] for argv in openssl[:3]] == ["req", "req", "x509"], "the local CA and certificate are made first"


@pytest.mark.parametrize(("stage", "expected"), [("dev", "yes"), ("stage", "no"), ("prod", "no")])
def test_up_grants_test_databases_only_where_tests_run(make_checkout, monkeypatch, stage, expected):
    """docker/db-init grants the app user `test_*` databases only when the stage's env says so (issue 23)."""
    make_checkout(**SECRETS)
    monkeypatch.setattr(local.tls, "wait_for_https", lambda port, path: None)
    c = context()
    checkout_tasks.up(c, stage=stage, build=False)
    (up_env,) = [call.kwargs["env"] for call in c.run.call_args_list if " up --detach" in call.args[0]]
    assert up_env["DB_TEST_DATABASES"] == expected


def test_qa_grants_test_databases_in_its_throwaway_database(make_checkout):
    make_checkout()
    c = context()
    with contextlib.suppress(Exit):
        checkout_tasks.qa(c)
    (db_env,) = [call.kwargs["env"] for call in c.run.call_args_list if " up --detach --wait db" in call.args[0]]
    assert db_env["DB_TEST_DATABASES"] == "yes"


def test_up_no_build_skips_the_build(make_checkout):
    settings = make_checkout()
    c = context()
    checkout_tasks.up(c, stage="dev", build=False)
    assert stack_calls(c) == [
        compose_argv(settings, "dev", "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180")
    ]


def test_up_with_app_port_taken_by_something_else_exits_before_building(make_checkout, monkeypatch):
    settings = make_checkout(APP_PORT="8123")
    monkeypatch.setattr(local, "port_is_free", lambda port: port != 8123)
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="dev")
    assert error.value.message.startswith("error: 127.0.0.1:8123 (APP_PORT) is already in use; ")
    assert docker_ps_calls(c) == [service_ps_argv(settings, "dev")]
    assert compose_calls(c) == []
    assert not settings.zip_path.exists()


def test_up_with_app_port_taken_by_this_stage_goes_ahead(make_checkout, monkeypatch):
    settings = make_checkout()
    monkeypatch.setattr(local, "port_is_free", lambda port: False)
    c = context({r"docker ps .*service=dev": Result("0123abcd shop:dev running\n")})
    checkout_tasks.up(c, stage="dev", build=False)
    assert stack_calls(c)[-1] == compose_argv(
        settings, "dev", "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180"
    )


def test_up_that_never_gets_healthy_shows_logs_and_exits(make_checkout):
    settings = make_checkout()
    c = context({r"docker compose .* up ": Result(exited=1)})
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="dev", build=False)
    assert error.value.message == (
        "error: dev did not come up healthy (deadline 180s); see the logs above (invoke logs)"
    )
    assert compose_calls(c)[-1] == compose_argv(settings, "*", "logs", "--no-color", "--tail", "40")


# ------------------------------------------------------------------------------------------ manage, compose


def test_manage_runs_a_one_off_container_with_the_split_command(make_checkout):
    settings = make_checkout(**SECRETS)
    c = context()
    checkout_tasks.manage(c, "migrate --plan", stage="prod")
    expected = compose_argv(
        settings, "prod", "run", "--rm", "--no-TTY", "prod", "python", "manage.py", "migrate", "--plan"
    )
    assert compose_calls(c) == [expected]  # no terminal here: no TTY, no pty
    assert c.run.call_args_list[-1].kwargs["pty"] is False


def test_manage_unknown_stage_exits(make_checkout):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.manage(c, "migrate", stage="qa")
    assert error.value.message == UNKNOWN_STAGE
    assert compose_calls(c) == []


def test_compose_passthrough_keeps_project_file_and_profile(make_checkout):
    settings = make_checkout()
    c = context()
    checkout_tasks.compose_passthrough(c, "config --services", stage="stage")
    assert compose_calls(c) == [compose_argv(settings, "stage", "config", "--services")]


def test_logs_of_one_service_followed(make_checkout):
    settings = make_checkout()
    c = context()
    checkout_tasks.logs(c, service="db", follow=True)
    assert compose_calls(c) == [compose_argv(settings, "*", "logs", "--no-color", "--tail", "200", "--follow", "db")]


# ------------------------------------------------------------------------------------------------------- qa


def test_qa_failure_keeps_reports_tears_down_and_exits_with_pytests_status(make_checkout):
    settings = make_checkout()
    c = context({r"docker compose .* run ": Result(exited=3)})
    with pytest.raises(Exit) as error:
        checkout_tasks.qa(c, pytest_args="-k health")
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
    assert {p.name for p in (settings.root / "reports").iterdir()} == {
        "compose-ps.txt",
        "compose-logs.txt",
        "sbom-test-qa.json",
    }


# -------------------------------------------------------------------------------------------------- dry run


def test_dry_build_writes_no_files(make_checkout):
    settings = make_checkout()
    c = context(dry=True)
    checkout_tasks.build(c, stage="prod")
    assert build_with_sbom(settings, "prod") in commands(c)
    assert not settings.zip_path.exists()
    assert not settings.zip_path.parent.exists()
    assert not (settings.root / "docker").exists()
    assert not (settings.root / "reports").exists()
    assert not (settings.root / ".lifecycle").exists()


def test_dry_build_skips_preflight(make_checkout):
    make_checkout()
    c = context({r"docker version ": Result(exited=1)}, dry=True)
    checkout_tasks.build(c, stage="dev")
    assert [argv for argv in commands(c) if argv[:2] == ["docker", "version"]] == []


def test_dry_zip_writes_nothing(make_checkout):
    settings = make_checkout()
    checkout_tasks.zip(context(dry=True))
    assert not settings.zip_path.parent.exists()


def test_zip_writes_the_zip(make_checkout):
    settings = make_checkout()
    c = context()
    checkout_tasks.zip(c)
    assert settings.zip_path.is_file()
    assert commands(c) == []  # no engine needed


def test_dry_clean_removes_no_files(make_checkout):
    settings = make_checkout()
    checkout_tasks.zip(context())
    c = context(dry=True)
    checkout_tasks.clean(c)
    assert settings.zip_path.is_file()
    assert settings.zip_path.with_name("Project_playground.manifest.json").is_file()
    removals = [argv[3:] for argv in commands(c) if argv[:3] == ["docker", "image", "rm"]]
    assert len(removals) == 1
    assert {f"{settings.project_name}:{stage}" for stage in ("dev", "test-qa", "stage", "prod")} <= set(removals[0])


def test_up_no_build_refuses_an_image_this_checkout_has_not_built(make_checkout):
    settings = make_checkout()
    c = context({r"docker image inspect --format '\{\{.Id\}\}'": Result(exited=1)})
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="dev", build=False)
    assert error.value.message == (
        f"error: {settings.project_name}:dev is not built yet; run invoke up --stage dev without --no-build"
    )
    assert compose_calls(c) == []


def test_two_checkouts_of_one_proj_name_build_and_run_images_of_their_own_names(make_checkout, tmp_path):
    """The image compose builds and runs is PROJECT:STAGE, and PROJECT differs between checkouts (the compose file
    names it after the compose project), so neither `up` nor `clean` in one checkout can reach another's image."""
    one = make_checkout()
    other = load_settings(root=tmp_path / "other", environ={"PROJ_NAME": "shop"})
    assert one.image(DEV) != other.image(DEV) and one.release_repository == other.release_repository
    c = context({r"docker image inspect --format '\{\{.Id\}\}'": Result(exited=1)})
    checkout_tasks.clean(c)
    inspected = {argv[-1] for argv in commands(c) if argv[:3] == ["docker", "image", "inspect"]}
    assert not any(image.startswith(other.project_name) for image in inspected)
    assert {one.image(stage) for stage in STAGES} <= inspected


def test_up_with_a_new_db_volume_starts_everything_in_one_wait(make_checkout):
    """A new volume is initialised with the current credentials: nothing to watch for."""
    settings = make_checkout()
    c = context({**owned(settings), r"docker volume inspect ": Result(exited=1)})
    checkout_tasks.up(c, stage="dev", build=False)
    assert stack_calls(c) == up_argvs(settings, "dev")[-1:]
    assert ["docker", "volume", "inspect", "--format", "{{.Name}}", f"{settings.project_name}_db-data"] in commands(c)


def test_up_says_at_once_when_the_database_refuses_the_password(make_checkout):
    settings = make_checkout()
    c = context({**VOLUME_EXISTS, r"docker inspect --format '\{\{json .State\}\}'": Result(DENIED_DB)})
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="dev", build=False, wait_timeout="600")
    assert error.value.message == (
        "error: the database refuses the app's login (Access denied): its volume was initialised with another "
        "DB_PASSWORD (or DB_USER); put the old value back in .env, or start over with invoke down --volumes (it "
        "backs the data up, then deletes it)"
    )
    assert stack_calls(c) == up_argvs(settings, "dev")[:1]  # never the long wait


RUNNING = {  # db runs from an earlier `up`, and the stage's container is found by its labels
    r"docker ps .*service=db": Result("dbid mysql:8.4 running\n"),
    r"docker ps .*service=(dev|prod)": Result("appid shop:prod running\n"),
}


def test_up_beside_a_healthy_db_starts_the_stage_alone_then_the_proxy(make_checkout, monkeypatch):
    """The everyday restart: compose's own wait would poll db's health, then everyone's, on half-second ticks."""
    settings = make_checkout(**SECRETS, HTTPS_PORT="8444")
    waited = []
    monkeypatch.setattr(local.tls, "wait_for_https", lambda port, path: waited.append((port, path)))
    c = context({**owned(settings), **VOLUME_EXISTS, **RUNNING})
    checkout_tasks.up(c, stage="prod", build=False)
    assert stack_calls(c) == [
        compose_argv(settings, "prod", "up", "--detach", "--no-build", "db"),
        compose_argv(settings, "prod", "up", "--detach", "--no-build", "--no-deps", "prod"),
        compose_argv(settings, "prod", "up", "--detach", "--no-build", "--no-deps", "proxy"),
    ]
    assert ["docker", "inspect", "--format", "{{json .State}}", "appid"] in commands(c)
    assert waited == [(8444, "/health")]


def test_up_beside_a_healthy_db_fails_with_the_logs_when_the_app_exits(make_checkout):
    settings = make_checkout()
    exited = '{"Status": "exited", "ExitCode": 1}'
    c = context({**owned(settings), **VOLUME_EXISTS, **RUNNING,
                 r"docker inspect --format '\{\{json .State\}\}' appid": Result(exited)})  # fmt: skip
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="dev", build=False)
    assert error.value.message.startswith("error: dev did not come up healthy")
    assert compose_argv(settings, "*", "logs", "--no-color", "--tail", "40") in compose_calls(c)


@pytest.mark.parametrize(
    ("record", "written"),
    [("mysql:8.4 8.4.3", False), ("", True), ("docker.io/library/mysql:8.4 8.4.2", True)],
    ids=["same server, already recorded", "no record yet", "recorded under another image name"],
)
def test_up_records_the_db_server_only_when_the_record_would_change(make_checkout, record, written):
    settings = make_checkout()
    db_answers = {
        r"docker compose .* exec --no-TTY db sh -c 'cat": Result(record + "\n"),  # the record
        r"docker (compose .* )?exec .*command -v": Result("app\n/usr/bin/mysqldump\n/usr/bin/mysql\n"),  # the tools
        r"docker (compose .* )?exec .*VERSION": Result("8.4.3\n"),  # on the running db container's id
    }
    c = context({**owned(settings), **VOLUME_EXISTS, **RUNNING, **db_answers})
    checkout_tasks.up(c, stage="dev", build=False)
    assert any("LIFECYCLE_DB_SERVER=" in " ".join(argv) for argv in commands(c)) is written


def test_up_refuses_a_malformed_container_setting_before_building(make_checkout):
    settings = make_checkout(DJANGO_LOG_LEVEL="LOUD")
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="dev")
    assert error.value.message.startswith("error: DJANGO_LOG_LEVEL='LOUD' is not one of: DEBUG, INFO, WARNING")
    assert compose_calls(c) == []
    assert not settings.zip_path.exists()


def test_manage_passes_env_and_never_shows_a_secret_value(make_checkout):
    settings = make_checkout()
    c = context(owned(settings))
    checkout_tasks.manage(
        c,
        "createsuperuser --noinput",
        env=["DJANGO_SUPERUSER_USERNAME=admin", "DJANGO_SUPERUSER_PASSWORD=s3cr3t-pw", "PROJ_NAME"],
    )
    assert compose_calls(c) == [
        compose_argv(settings, "dev", "run", "--rm", "--no-TTY", "--env", "DJANGO_SUPERUSER_USERNAME=admin", "--env",
                     "DJANGO_SUPERUSER_PASSWORD", "--env", "PROJ_NAME", "dev", "python", "manage.py",
                     "createsuperuser", "--noinput")
    ]  # fmt: skip
    call = c.run.call_args_list[-1]
    assert "s3cr3t-pw" not in call.args[0]  # the printed command
    assert call.kwargs["env"]["DJANGO_SUPERUSER_PASSWORD"] == "s3cr3t-pw"  # compose looks it up by name


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(["NOT_SET_ANYWHERE"], "error: --env NOT_SET_ANYWHERE: NOT_SET_ANYWHERE is not set in your "
                     "environment; export it or use --env NOT_SET_ANYWHERE=VALUE", id="a name without a value"),
        pytest.param(["1X=y"], "error: --env '1X=y': expected NAME or NAME=VALUE with a variable name; "
                     "fix the option", id="not a variable name"),
    ],
)  # fmt: skip
def test_manage_refuses_a_bad_env_and_runs_nothing(make_checkout, env, message):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.manage(c, "check", env=env)
    assert error.value.message == message
    assert compose_calls(c) == []


def test_manage_dbshell_points_to_the_task_that_has_a_client(make_checkout):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.manage(c, "dbshell")
    assert error.value.message == (
        "error: the app images have no database client, so dbshell cannot run there; use invoke db.shell"
    )
    assert compose_calls(c) == []


def test_manage_builds_a_missing_image_with_its_zip_first(make_checkout):
    settings = make_checkout(**SECRETS)
    c = context({r"docker image inspect --format '\{\{.Id\}\}' " + re.escape(settings.image(PROD)): Result(exited=1)})
    checkout_tasks.manage(c, "check", stage="prod")
    calls = compose_calls(c)
    assert calls[0] == build_with_sbom(settings, "prod")
    assert calls[-1] == compose_argv(
        settings, "prod", "run", "--rm", "--no-TTY", "prod", "python", "manage.py", "check"
    )
    assert settings.zip_path.is_file()


def test_manage_passes_the_commands_exit_status(make_checkout):
    settings = make_checkout()
    c = context({**owned(settings), r"docker compose .* run ": Result(exited=3)})
    with pytest.raises(Exit) as error:
        checkout_tasks.manage(c, "check")
    assert error.value.code == 3


def test_shell_without_a_terminal_refuses_in_one_line(make_checkout, monkeypatch):
    make_checkout()
    monkeypatch.setattr("sys.stdin", io.StringIO())
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.shell(c)
    assert error.value.message == (
        "error: invoke shell needs a terminal; without one, run a command: invoke shell --command 'CMD'"
    )
    assert compose_calls(c) == []


@pytest.mark.parametrize("stdin", [None, io.StringIO()], ids=["stdin closed", "stdin not a terminal"])
def test_down_and_clean_work_with_stdin_closed_or_redirected(make_checkout, monkeypatch, stdin):
    settings = make_checkout()
    monkeypatch.setattr("sys.stdin", stdin)
    checkout_tasks.down(context())
    c = context()
    checkout_tasks.clean(c)
    assert compose_calls(c) == [compose_argv(settings, "*", "down", "--remove-orphans")]
    with pytest.raises(Exit) as error:  # nobody can type the project name: --volumes needs --yes
        checkout_tasks.down(context(), volumes=True)
    assert "add --yes to confirm (nothing was changed)" in error.value.message


@pytest.mark.parametrize("stdin", [None, io.StringIO()], ids=["stdin closed", "stdin not a terminal"])
def test_shell_command_without_a_terminal_runs_without_tty(make_checkout, monkeypatch, stdin):
    settings = make_checkout()
    monkeypatch.setattr("sys.stdin", stdin)
    c = context()
    checkout_tasks.shell(c, stage="prod", command="ls -l /app", env=["A=1"])
    assert compose_calls(c) == [
        compose_argv(settings, "prod", "exec", "--no-TTY", "--env", "A=1", "prod", "bash", "-c", "ls -l /app")
    ]
    assert c.run.call_args_list[-1].kwargs["pty"] is False
    assert c.run.call_args_list[-1].kwargs["in_stream"] is False


def test_clean_removes_the_images_of_this_checkouts_names_that_are_present(make_checkout):
    settings = make_checkout()
    answers = {
        r"docker image inspect --format '\{\{.Id\}\}' " + re.escape(settings.image(DEV)): Result("sha256:d\n"),
        r"docker image inspect ": Result(exited=1),  # the rest: not built
    }
    c = context(answers)
    checkout_tasks.clean(c)
    assert [argv for argv in commands(c) if argv[:3] == ["docker", "image", "rm"]] == [
        ["docker", "image", "rm", settings.image(DEV)]
    ]


def test_dry_up_and_qa_say_what_they_would_do_never_what_happened(make_checkout, capsys):
    make_checkout(**SECRETS)
    checkout_tasks.up(context(dry=True), stage="prod")
    checkout_tasks.qa(context(dry=True))
    err = capsys.readouterr().err
    assert "dry run: would wait until db and prod are healthy, then serve https://127.0.0.1:8443/" in err
    assert "dry run: would run pytest in test-qa and copy its reports to " in err
    assert "is up and healthy" not in err and "pytest exited" not in err


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        pytest.param({"DJANGO_SECRET_KEY": "k"}, "prod needs DB_PASSWORD, DB_ROOT_PASSWORD; ", id="a missing password"),
        pytest.param({**SECRETS, "DB_PASSWORD": "app-dev-password"},
                     "prod refuses the published default value of DB_PASSWORD; ", id="the old compose fallback"),
    ],
)  # fmt: skip
def test_dry_up_refuses_prod_on_a_missing_or_default_secret_and_writes_nothing(make_checkout, environ, named):
    settings = make_checkout(**environ)
    c = context(dry=True)
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="prod")
    assert error.value.message.startswith(f"error: {named}")
    assert "\n" not in error.value.message
    assert not commands(c)
    assert not (settings.root / ".lifecycle" / "secrets").exists(), "a dry run writes no secret file"


def test_failing_qa_says_pytests_status_once(make_checkout, capsys):
    make_checkout()
    with pytest.raises(Exit) as error:
        checkout_tasks.qa(context({r"docker compose .* run ": Result(exited=2)}))
    assert (error.value.code, error.value.message) == (2, None)
    assert capsys.readouterr().err.count("pytest exited 2") == 1


# -------------------------------------------------------------------------------------- the command line


def test_invoke_list_shows_every_task_with_a_summary():
    done = subprocess.run(
        [str(CHECKOUT / ".venv" / "bin" / "invoke"), "--list"],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = dict(re.findall(r"^  (\S+)(?: \([^)]*\))?\s{2,}(\S.*)$", done.stdout, flags=re.MULTILINE))
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


# ---------------------------------------------------------------------------------- registry, release, tls


def test_registry_down_volumes_without_yes_and_no_terminal_deletes_nothing(make_checkout, monkeypatch):
    make_checkout()
    monkeypatch.setattr(release_tasks, "terminal_prompt", lambda: None)
    c = context()
    with pytest.raises(Exit) as error:
        release_tasks.registry_down(c, volumes=True)
    assert "--volumes deletes every pushed image of" in error.value.message
    assert compose_calls(c) == []


def test_registry_down_keeps_the_volume(make_checkout):
    settings = make_checkout()
    c = context()
    release_tasks.registry_down(c)
    assert compose_calls(c) == [registry.down_argv(settings)]


@pytest.mark.parametrize("stage", ["dev", "test-qa"])
def test_release_of_a_stage_that_is_not_shipped_exits_before_anything_runs(make_checkout, stage):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        release_tasks.release(c, stage=stage)
    assert error.value.message.startswith("error: only stage and prod are released")
    assert commands(c) == list(PREFLIGHT)


def test_releases_with_none_recorded_says_how_to_make_one(make_checkout, capsys):
    make_checkout()
    release_tasks.releases(context())
    assert "invoke release --stage stage" in capsys.readouterr().out


def test_tls_trust_prints_the_curl_line_with_the_generated_ca(make_checkout, capsys):
    settings = make_checkout(HTTPS_PORT="8444")
    operate_tasks.tls_trust(context())
    ca = settings.root / ".lifecycle" / "tls" / "ca.crt"
    assert f"curl --cacert {ca} https://127.0.0.1:8444/" in capsys.readouterr().out


def test_clean_removes_the_local_release_tags_too(make_checkout):
    settings = make_checkout(REGISTRY_PORT="5401")
    tags = "127.0.0.1:5401/shop:prod-0123456789ab\n127.0.0.1:5401/shop:prod\nother:prod\n"
    owned_release_tags = r"docker image inspect .*127\.0\.0\.1:5401/shop:"  # built by this checkout
    c = context({
        r"docker image ls --format": Result(tags),
        owned_release_tags: Result(settings.project_name + "\n"),
        r"docker image inspect ": Result(exited=1),
    })  # fmt: skip
    checkout_tasks.clean(c)
    removed = ["127.0.0.1:5401/shop:prod", "127.0.0.1:5401/shop:prod-0123456789ab"]
    removals = [argv[3:] for argv in commands(c) if argv[:3] == ["docker", "image", "rm"]]
    assert removals == [removed]
    assert settings.release_repository == "127.0.0.1:5401/shop"


def test_clean_removes_the_proj_name_images_this_checkout_built_before_images_were_named_per_checkout(make_checkout):
    settings = make_checkout()
    c = context({
        r"docker image ls --format \S+ shop$": Result("shop:prod\nshop:dev\n"),
        r"docker image inspect .* shop:prod$": Result(settings.project_name + "\n"),  # this checkout's, old name
        r"docker image inspect .* shop:dev$": Result("shop-0therc0d\n"),  # another checkout's
        r"docker image inspect ": Result(exited=1),
    })  # fmt: skip
    checkout_tasks.clean(c)
    assert [argv[3:] for argv in commands(c) if argv[:3] == ["docker", "image", "rm"]] == [["shop:prod"]]


# -------------------------------------------------------------------------------------------------- debugger


def debug_up_argv(settings: Settings, *wait: str) -> list[str]:
    argv = compose_argv(settings, "dev", "up", "--detach", "--no-build", *wait)
    argv[6:6] = ["--file", str(settings.root / "docker" / "compose.debug.yaml")]
    return argv


@pytest.mark.parametrize(
    ("flags", "mode", "wait"),
    [
        pytest.param({}, "listen", ("--wait", "--wait-timeout", "180"), id="--debug waits for health"),
        pytest.param({"wait": True}, "wait", (), id="--debug --wait returns once started (paused for a client)"),
    ],
)
def test_up_debug_adds_the_debug_file_and_passes_the_mode(make_checkout, flags, mode, wait):
    settings = make_checkout()
    c = context()
    checkout_tasks.up(c, stage="dev", build=False, debug=True, **flags)
    expected = debug_up_argv(settings, *wait)
    assert stack_calls(c) == [expected]
    assert c.run.call_args_list[commands(c).index(expected)].kwargs["env"]["DEBUGPY"] == mode


@pytest.mark.parametrize(
    ("stage", "flags", "message"),
    [
        ("prod", {"debug": True}, "error: --debug needs --stage dev: debugpy is in the dev image only, never in prod"),
        ("dev", {"wait": True}, "error: --wait pauses the server for a debugger; use it with --debug"),
    ],
)
def test_up_debug_refuses_what_it_cannot_do_before_building(make_checkout, stage, flags, message):
    make_checkout(**SECRETS)
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage=stage, **flags)
    assert (error.value.message, error.value.code) == (message, 1)
    assert compose_calls(c) == []


def test_up_debug_with_debug_port_taken_exits_before_building(make_checkout, monkeypatch):
    settings = make_checkout(DEBUG_PORT="8124")
    monkeypatch.setattr(local, "port_is_free", lambda port: port != 8124)
    c = context()
    with pytest.raises(Exit) as error:
        checkout_tasks.up(c, stage="dev", debug=True)
    assert error.value.message.startswith("error: 127.0.0.1:8124 (DEBUG_PORT) is already in use; ")
    assert docker_ps_calls(c) == [service_ps_argv(settings, "dev")]


# -------------------------------------------------------------------------------------------------- deps


def test_deps_upgrade_of_a_package_no_lock_holds_runs_nothing(make_checkout):
    make_checkout()
    c = context()
    with pytest.raises(Exit) as error:
        suite_tasks.deps_upgrade(c, package="nosuchpkg")
    assert (error.value.message, error.value.code) == (
        "error: nosuchpkg is in no lock; add it to a requirements/*.in, then run invoke deps.lock",
        1,
    )
    assert commands(c) == []


def test_dry_deps_lock_prints_one_uv_compile_per_lock_and_writes_nothing(make_checkout):
    settings = make_checkout()
    c = context(dry=True)
    suite_tasks.deps_lock(c)
    argvs = commands(c)
    assert [argv[argv.index("--output-file") + 1] for argv in argvs] == [lock.output for lock in deps.LOCKS]
    assert all(argv[1:3] == ["--directory", str(settings.root)] for argv in argvs)
    assert sorted(path.name for path in (settings.root / "requirements").iterdir()) == ["runtime.txt", "test.txt"]


def test_clean_removes_the_sbom_images_reports_and_records(make_checkout):
    settings = make_checkout()
    checkout_tasks.build(sbom_context("sha256:one"), stage="prod")
    assert (settings.root / ".lifecycle" / "sbom-prod.id").is_file()
    c = context()
    checkout_tasks.clean(c)
    removals = [argv[3:] for argv in commands(c) if argv[:3] == ["docker", "image", "rm"]]
    assert {settings.sbom_image(stage) for stage in STAGES} <= set(removals[0])
    assert not (settings.root / "reports").exists()
    assert not (settings.root / ".lifecycle" / "sbom-prod.id").exists()


def test_clean_removes_the_earlier_builds_of_this_checkout_too(make_checkout, capsys):
    """Each rebuild leaves the image it replaced untagged; clean finds them by this project's label."""
    settings = make_checkout()
    c = context({r"docker image ls --quiet --no-trunc --filter dangling=true": Result("sha256:b\nsha256:a\n")})
    checkout_tasks.clean(c)
    label = f"label=io.lifecycle.compose-project={settings.project_name}"
    assert [
        "docker",
        "image",
        "ls",
        "--quiet",
        "--no-trunc",
        "--filter",
        "dangling=true",
        "--filter",
        label,
    ] in commands(c)
    assert ["docker", "image", "rm", "sha256:a", "sha256:b"] in commands(c)
    assert f"remove 2 earlier builds of {settings.project_name}" in capsys.readouterr().err


def test_sigterm_is_passed_on_to_the_running_command_ctrl_c_is_not():
    """SIGTERM (timeout(1), CI) may reach only invoke: the command gets it too, or invoke would wait for it forever;
    Ctrl-C already reached the whole process group."""
    from lifecycle.runner import Terminated

    for interrupt, ends in ((Terminated(), -15), (KeyboardInterrupt(), None)):
        command = subprocess.Popen(["sleep", "30"], stdin=subprocess.PIPE)
        local = common.InterruptibleLocal(MockContext())
        local.process, local.using_pty, local.encoding = command, False, "utf-8"
        try:
            local.send_interrupt(interrupt)
            with contextlib.suppress(subprocess.TimeoutExpired):
                command.wait(timeout=5 if ends else 0.2)
            assert command.returncode == ends and local.interrupted is interrupt
        finally:
            command.kill()
            command.wait()
