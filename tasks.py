"""Invoke tasks for the container lifecycle: `invoke --list`, `invoke --help TASK`.

Thin by design: each task resolves settings (defaults < .lifecycle/images.env < .env < environment <
flags), then calls the shared core in `lifecycle/`, which builds every docker command as a list and
prints it before it runs. `invoke --dry TASK` prints the commands without running them.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import sys
from pathlib import Path

from invoke import Collection, Exit, task
from invoke.runners import Local

from lifecycle import compose as cmd
from lifecycle import dbclient, deps, offline, sbom
from lifecycle import doctor as doctor_checks
from lifecycle.doctor import preflight
from lifecycle.errors import EXPECTED_FAILURES
from lifecycle.runner import InvokeRunner
from lifecycle.settings import DEFAULTS, ENGINE_CACHE, load_settings
from lifecycle.stack import Suite, terminal_prompt
from lifecycle.stages import NAMES, Stage

STAGE_HELP = f"One of {', '.join(NAMES)}. Default: dev."
ENV_HELP = (
    "NAME=VALUE or NAME (value from your environment) for the container; repeat it. Values of names that look "
    "secret (PASSWORD, SECRET, TOKEN, KEY) are passed by name, never shown. Default: none."
)
NO_BACKUP_HELP = "Skip the automatic safety backup (the output says so). Default: off (back up first)."
VOLUME_HELP = {
    "volumes": "Also delete the database volume (asks to confirm; backs it up first). Default: off.",
    "yes": "Confirm --volumes without asking. Default: off.",
    "no_backup": NO_BACKUP_HELP,
}


class InterruptibleLocal(Local):
    """Invoke's local runner, but an interrupt never ends in a traceback: Invoke passes Ctrl-C on by writing it to
    the command's stdin, which fails once that pipe is closed (stdin at EOF, e.g. /dev/null). The command got the
    SIGINT itself (same process group), so there is nothing left to pass on."""

    def send_interrupt(self, interrupt: KeyboardInterrupt) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().send_interrupt(interrupt)


def user_errors(body):
    """Expected failures end the task with their one-line message and exit status 1."""

    @functools.wraps(body)
    def wrapper(c, *args, **kwargs):
        try:
            return body(c, *args, **kwargs)
        except EXPECTED_FAILURES as error:
            raise Exit(f"error: {error}", code=1) from None

    return wrapper


def suite(c, engine=True, **flags: str | None) -> Suite:
    """The shared core for this task, with its flags over the settings; `engine` tasks first check that
    docker and compose v2 answer."""
    s = Suite(load_settings().override(**flags), InvokeRunner(c), dry=c.config.run.dry)
    if engine and not s.dry:
        preflight(s.run, cache=s.settings.root / ENGINE_CACHE)
    return s


@task
@user_errors
def zip(c):  # noqa: A001 - the task is called zip on the command line
    """Pack the code that stage and prod embed into ZIP_DIR/ZIP_NAME (deterministic, with a manifest)."""
    suite(c, engine=False).zip()


@task(help={"stage": STAGE_HELP, "no_cache": "Build without Docker's layer cache. Default: off."})
@user_errors
def build(c, stage="dev", no_cache=False):
    """Build one stage's image (tagged PROJ_NAME:STAGE); test-qa, stage and prod re-zip the code first."""
    suite(c).build(Stage.parse(stage), no_cache=no_cache)


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
    }
)
@user_errors
def up(c, stage="dev", build=True, wait_timeout=None, debug=False, wait=False, no_backup=False):
    """Start the database and one stage, wait until both are healthy, print the URL."""
    if wait and not debug:
        raise Exit("error: --wait pauses the server for a debugger; use it with --debug", code=1)
    mode = ("wait" if wait else "listen") if debug else None
    suite(c, WAIT_TIMEOUT=wait_timeout).up(Stage.parse(stage), build=build, debug=mode, no_backup=no_backup)


@task(help=VOLUME_HELP)
@user_errors
def down(c, volumes=False, yes=False, no_backup=False):
    """Stop and remove this checkout's containers and network; data stays unless --volumes."""
    suite(c).down(volumes=volumes, yes=yes, ask=terminal_prompt(), no_backup=no_backup)


@task(
    help={
        "service": "Only this service (db, dev, test-qa, stage, prod). Default: all.",
        "follow": "Keep following the output. Default: off.",
        "tail": "Lines per service. Default: 200.",
    }
)
@user_errors
def logs(c, service=None, follow=False, tail="200"):
    """Show the containers' logs."""
    s = suite(c)
    s.run(cmd.logs_argv(s.settings, [service] if service else [], follow=follow, tail=tail), env=s.settings.env)


@task
@user_errors
def ps(c):
    """List this checkout's containers and their health."""
    s = suite(c)
    s.run(cmd.ps_argv(s.settings), env=s.settings.env)


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
    status = suite(c).shell(Stage.parse(stage), command, env or [])
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
    status = suite(c).manage(Stage.parse(stage), shlex.split(command), env or [])
    if status:
        raise Exit(code=status)


@task(help={"pytest_args": "Extra pytest arguments, quoted, e.g. '-k health -x'. Default: none."})
@user_errors
def qa(c, pytest_args=""):
    """Run the site's tests inside the test-qa image against a throwaway database (same as nox -s qa)."""
    status = suite(c).qa(shlex.split(pytest_args))
    if status:
        raise Exit(code=status)  # the suite's last line already says so


@task(help=VOLUME_HELP)
@user_errors
def clean(c, volumes=False, yes=False, no_backup=False):
    """Remove what the suite made for this checkout: containers, stage images, zip, reports."""
    suite(c).clean(volumes=volumes, yes=yes, ask=terminal_prompt(), no_backup=no_backup)


@task
@user_errors
def doctor(c):
    """Check the machine: engine, Compose v2, BuildKit, base images, disk, ports, line endings."""
    s = suite(c, engine=False)
    failures = doctor_checks.report(s.settings, s.run)
    if failures:
        raise Exit(f"doctor: {failures} check(s) failed; fix them as shown above", code=1)


@task(name="offline", help={"force": "Rebuild the images even when they exist. Default: off."})
@user_errors
def images_offline(c, force=False):
    """Build the base images from Debian packages (no registry) and switch the stack to them."""
    s = suite(c)
    made = offline.ensure_offline_images(s.settings, s.run, force=force)
    if s.dry:
        print(f"dry run: would build {', '.join(made) if made else 'nothing'} and switch the stack to them")
        return
    offline.write_switch(s.settings)
    print(f"offline images: {', '.join(made) if made else 'all present, nothing rebuilt'}")


@task(name="compose", help={"args": "Arguments for docker compose, quoted, e.g. 'config'.", "stage": STAGE_HELP})
@user_errors
def compose_passthrough(c, args, stage="dev"):
    """Run any docker compose command with this checkout's project, file, profile and settings."""
    target = Stage.parse(stage)
    s = suite(c)
    s.run(cmd.compose_argv(s.settings, *shlex.split(args), stage=target), env=s.settings.env, interactive=True)


@task(name="backup")
@user_errors
def db_backup(c):
    """Back up the running database into BACKUP_DIR: a streamed, consistent dump (.sql.gz) and its manifest."""
    suite(c).database().backup()


@task(
    name="restore",
    help={
        "file": "The backup (.sql.gz, with its .json manifest next to it); invoke db.list shows them.",
        "yes": "Replace the database without asking for the project name. Default: off (asks; refuses without a "
        "terminal).",
        "other_database": "Restore a backup of another database name into this one. Default: off (refused).",
        "no_backup": NO_BACKUP_HELP,
    },
)
@user_errors
def db_restore(c, file, yes=False, other_database=False, no_backup=False):
    """Verify a backup, load it into a scratch database, swap it in atomically, say which migrations it lacks."""
    suite(c).database().restore(
        Path(file), yes=yes, ask=terminal_prompt(), other_database=other_database, no_backup=no_backup
    )


@task(
    name="reset",
    help={
        "yes": "Reset without asking for the project name. Default: off (asks; refuses without a terminal).",
        "load": "A fixture to load afterwards (manage.py loaddata, path as the app container sees it). Default: none.",
        "stage": "The stage whose image migrates. Default: the running app service, else dev.",
        "no_backup": NO_BACKUP_HELP,
    },
)
@user_errors
def db_reset(c, yes=False, load=None, stage=None, no_backup=False):
    """Drop and recreate the database, migrate it and optionally load a fixture; a safety backup first."""
    target = Stage.parse(stage) if stage else None
    suite(c).database().reset(yes=yes, ask=terminal_prompt(), stage=target, fixture=load, no_backup=no_backup)


@task(name="list")
@user_errors
def db_list(c):
    """List the backups: size, age, kind (manual or automatic), tables, rows, server and migrations."""
    print("\n".join(suite(c, engine=False).database().list()))


@task(name="shell", help={"root": "Connect as root instead of the app user. Default: off."})
@user_errors
def db_shell(c, root=False):
    """A SQL prompt in the running db service, as the app user on its database (root only with --root)."""
    s = suite(c)
    database = s.database()
    database.require_running()
    tty = sys.stdin.isatty()
    s.run(dbclient.shell(s.settings, database.tools(), root=root, tty=tty), env=s.settings.env, interactive=tty)


@task(name="sbom", help={"stage": STAGE_HELP})
@user_errors
def sbom_summary(c, stage="dev"):
    """Summarise the stage's SBOM (reports/sbom-STAGE.json, written by every build): counts and key versions."""
    target = Stage.parse(stage)
    s = suite(c, engine=False)
    print("\n".join(sbom.summary(sbom.load(s.settings.root, target), target.name)))


@task(name="lock")
@user_errors
def deps_lock(c):
    """Regenerate every requirements/*.txt from its .in with hashes (uv; deterministic: pins move only on upgrade)."""
    s = suite(c, engine=False)
    deps.lock_all(s.run, s.settings.root, dry=s.dry)


@task(name="upgrade", help={"package": "Upgrade only this package (e.g. django). Default: every package."})
@user_errors
def deps_upgrade(c, package=None):
    """Upgrade one package or all of them in every lock, and print each version change."""
    s = suite(c, engine=False)
    deps.lock_all(s.run, s.settings.root, upgrade_all=package is None, upgrade_package=package, dry=s.dry)


images = Collection("images", images_offline)
dependencies = Collection("deps", deps_lock, deps_upgrade)
db = Collection("db", db_backup, db_restore, db_reset, db_list, db_shell)
ns = Collection(zip, build, up, down, logs, ps, shell, manage, qa, clean, doctor, compose_passthrough, sbom_summary)
ns.add_collection(images)
ns.add_collection(dependencies)
ns.add_collection(db)
ns.configure({"runners": {"local": InterruptibleLocal}})
