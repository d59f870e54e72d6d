"""The compose lifecycle of this checkout (lifecycle/local.py): zip, build, up, down, logs, ps, shell, manage, qa,
clean, compose, doctor, sbom."""

from __future__ import annotations

import functools
import shlex

from invoke import Exit, task

from lifecycle.cli.tasks.common import NO_BACKUP_HELP, STAGE_HELP, local, user_errors
from lifecycle.commands import compose
from lifecycle.confirm import terminal_prompt
from lifecycle.lazy import lazy_module
from lifecycle.local import Debugger
from lifecycle.settings_table import DEFAULTS
from lifecycle.stages import Stage

# Loaded on first use: a task imports only what it runs (`invoke build` none of these).
devwatch = lazy_module("lifecycle.devwatch")
doctor_checks = lazy_module("lifecycle.doctor")
sbom = lazy_module("lifecycle.sbom")
tracing = lazy_module("lifecycle.tracing")

ENV_HELP = (
    "NAME=VALUE or NAME (value from your environment) for the container; repeat it. Values of names that look "
    "secret (PASSWORD, SECRET, TOKEN, KEY) are passed by name, never shown. Default: none."
)
VOLUME_HELP = {
    "volumes": "Also delete the database volume (asks to confirm; backs it up first). Default: off.",
    "yes": "Confirm --volumes without asking. Default: off.",
    "no_backup": NO_BACKUP_HELP,
}


@task
@user_errors
def zip(c):  # noqa: A001 - the task is called zip on the command line
    """Pack the code that stage and prod embed into ZIP_DIR/ZIP_NAME (deterministic, with a manifest)."""
    local(c, engine=False).zip()


@task(help={"stage": STAGE_HELP, "no_cache": "Build without Docker's layer cache. Default: off."})
@user_errors
def build(c, stage="dev", no_cache=False):
    """Build one stage's image (tagged PROJECT:STAGE, this checkout's); test-qa, stage and prod re-zip first."""
    local(c).build(Stage.parse(stage), no_cache=no_cache)


@task(
    help={
        "stage": STAGE_HELP,
        "build": "Build the image first (cached). Default: on; --no-build skips it.",
        "wait_timeout": (
            f"Seconds to wait for a healthy db, then for a healthy stage. Default: WAIT_TIMEOUT "
            f"({DEFAULTS['WAIT_TIMEOUT']})."
        ),
        "debug": "dev only: run the server under debugpy on 127.0.0.1:DEBUG_PORT (5678). Default: off.",
        "wait": "With --debug: start the server only once a debugger attaches. Default: off.",
        "no_backup": "When DB_IMAGE's major version changed, " + NO_BACKUP_HELP,
        "watch": "dev only: then keep watching; a changed dependency lock rebuilds and recreates dev, a new migration "
        "is applied; Ctrl-C stops watching and leaves dev running. Default: off.",
    }
)
@user_errors
def up(c, stage="dev", build=True, wait_timeout=None, debug=False, wait=False, no_backup=False, watch=False):
    """Start the database and one stage (prod: and its HTTPS proxy), wait until all are healthy, print the URL."""
    if wait and not debug:
        raise Exit("error: --wait pauses the server for a debugger; use it with --debug", code=1)
    mode = Debugger.of(debug, wait)
    suite, chosen = local(c, WAIT_TIMEOUT=wait_timeout), Stage.parse(stage)
    bring_up = functools.partial(suite.up, chosen, debug=mode, no_backup=no_backup)
    watcher = devwatch.Watcher(suite, chosen, bring_up) if watch else None  # refuses another stage before it starts
    bring_up(build=build)
    if watcher:
        watcher.run()


@task(help=VOLUME_HELP)
@user_errors
def down(c, volumes=False, yes=False, no_backup=False):
    """Stop and remove this checkout's containers and network; data stays unless --volumes."""
    local(c).down(volumes=volumes, yes=yes, ask=terminal_prompt(), no_backup=no_backup)


@task(
    help={
        "service": "Only this service (db, dev, test-qa, stage, prod, proxy, STAGE-scheduler). Default: all.",
        "follow": "Keep following the output. Default: off.",
        "tail": "Lines per service. Default: 200.",
        "request": "Only the lines of one request (its X-Request-ID) from the proxy, gunicorn and Django, compose's "
        "and the swarm stack's. Default: every line.",
    }
)
@user_errors
def logs(c, service=None, follow=False, tail="200", request=None):
    """Show the containers' logs."""
    s = local(c)
    if request is not None:
        print("\n".join(tracing.request_lines(s.settings, s.run, request)))
        return
    s.run(compose.logs_argv(s.settings, [service] if service else [], follow=follow, tail=tail), env=s.settings.env)


@task
@user_errors
def ps(c):
    """List this checkout's containers and their health."""
    s = local(c)
    s.run(compose.ps_argv(s.settings), env=s.settings.env)


@task(
    iterable=["env"],
    help={
        "stage": STAGE_HELP + " The stage must be up (invoke up).",
        "command": "Run this bash command and exit, e.g. 'ls -l'; needed without a terminal. Default: none.",
        "env": ENV_HELP,
    },
)
@user_errors
def shell(c, stage="dev", command=None, env=None):
    """Open a bash shell in the running container of a stage (or run one command with --command)."""
    status = local(c).shell(Stage.parse(stage), command, env or [])
    if status:
        raise Exit(code=status)


@task(
    iterable=["env"],
    help={
        "command": "The manage.py command and its arguments, quoted, e.g. 'createsuperuser'.",
        "stage": STAGE_HELP,
        "env": ENV_HELP,
    },
)
@user_errors
def manage(c, command, stage="dev", env=None):
    """Run a manage.py command in a one-off container of a stage (built and db started if needed)."""
    status = local(c).manage(Stage.parse(stage), shlex.split(command), env or [])
    if status:
        raise Exit(code=status)


@task(
    help={
        "pytest_args": "Extra pytest arguments, quoted, e.g. '-k health -x'. Default: none.",
        "changed": "Only the tests affected by what changed since the last --changed run (pytest-testmon; the whole "
        "suite after a dependency or settings change). Default: off, the whole suite with coverage.",
    }
)
@user_errors
def qa(c, pytest_args="", changed=False):
    """Run the site's tests inside the test-qa image against a throwaway database (same as nox -s qa)."""
    status = local(c).qa(shlex.split(pytest_args), changed=changed)
    if status:
        raise Exit(code=status)  # the suite's last line already says so


@task(help=VOLUME_HELP)
@user_errors
def clean(c, volumes=False, yes=False, no_backup=False):
    """Remove what the suite made for this checkout: containers, stage images, zip, reports."""
    local(c).clean(volumes=volumes, yes=yes, ask=terminal_prompt(), no_backup=no_backup)


@task
@user_errors
def doctor(c):
    """Check the machine: engine, Compose v2, BuildKit, base images, disk, ports, line endings."""
    s = local(c, engine=False)
    failures = doctor_checks.report(s.settings, s.run)
    if failures:
        raise Exit(f"doctor: {failures} check(s) failed; fix them as shown above", code=1)


@task(name="compose", help={"args": "Arguments for docker compose, quoted, e.g. 'config'.", "stage": STAGE_HELP})
@user_errors
def compose_passthrough(c, args, stage="dev"):
    """Run any docker compose command with this checkout's project, file, profile and settings."""
    target = Stage.parse(stage)
    s = local(c)
    s.run(compose.compose_argv(s.settings, *shlex.split(args), stage=target), env=s.settings.env, interactive=True)


@task(name="sbom", help={"stage": STAGE_HELP})
@user_errors
def sbom_summary(c, stage="dev"):
    """Summarise the stage's SBOM (reports/sbom-STAGE.json, written by every build): counts and key versions."""
    target = Stage.parse(stage)
    s = local(c, engine=False)
    print("\n".join(sbom.summary(sbom.load(s.settings.root, target), target.name)))
