"""Invoke tasks for the container lifecycle: `invoke --list`, `invoke --help TASK`.

Thin by design: each task resolves settings (defaults < .lifecycle/images.env < .env < environment <
flags), then calls the shared core in `lifecycle/`, which builds every docker command as a list and
prints it before it runs. `invoke --dry TASK` prints the commands without running them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from invoke import Collection, Exit, task
from invoke.runners import Local as InvokeLocal

from lifecycle import adopt as adopting
from lifecycle import cluster as cluster_core
from lifecycle import (
    cluster_layout,
    deps,
    drill,
    maintenance,
    offline,
    pitr,
    provenance,
    retention,
    sbom,
    signing,
    tls,
    tracing,
    wheel,
)
from lifecycle import deploy as swarm_deploy
from lifecycle import doctor as doctor_checks
from lifecycle import jobs as scheduled
from lifecycle import registry as local_registry
from lifecycle import release as releasing
from lifecycle import remote as offsite
from lifecycle import status as site_status
from lifecycle.commands import compose
from lifecycle.confirm import confirm_project, terminal_prompt
from lifecycle.context import Context
from lifecycle.doctor import preflight
from lifecycle.errors import EXPECTED_FAILURES
from lifecycle.local import Debugger, Local
from lifecycle.runner import InvokeRunner, SubprocessRunner, Terminated, interrupt_on_sigterm
from lifecycle.settings import DEFAULTS, ENGINE_CACHE, load_settings
from lifecycle.stages import NAMES, Stage

STAGE_HELP = f"One of {', '.join(NAMES)}. Default: dev."
ENV_HELP = (
    "NAME=VALUE or NAME (value from your environment) for the container; repeat it. Values of names that look "
    "secret (PASSWORD, SECRET, TOKEN, KEY) are passed by name, never shown. Default: none."
)
LOCK_WAIT_HELP = (
    f"Seconds to wait while another deploy or rollback of the stack holds the deploy lock; 0 refuses at once. "
    f"Default: DEPLOY_LOCK_WAIT ({DEFAULTS['DEPLOY_LOCK_WAIT']})."
)
NO_BACKUP_HELP = "Skip the automatic safety backup (the output says so). Default: off (back up first)."
VOLUME_HELP = {
    "volumes": "Also delete the database volume (asks to confirm; backs it up first). Default: off.",
    "yes": "Confirm --volumes without asking. Default: off.",
    "no_backup": NO_BACKUP_HELP,
}


class InterruptibleLocal(InvokeLocal):
    """Invoke's local runner, but an interrupt never ends in a traceback and always stops the task.

    Invoke passes Ctrl-C on by writing it to the command's stdin, which fails once that pipe is closed (stdin at
    EOF, e.g. /dev/null); the command got the SIGINT itself (same process group), so nothing is left to pass on.
    Invoke then waits for the command and carries on; a task whose command may fail (a probe) would carry on
    too, so the interrupt is raised again once the command has ended: the task's clean-up runs, invoke exits 1.
    """

    interrupted: KeyboardInterrupt | None = None
    # How often invoke looks whether the command has ended (and for stdin to pass on): its 10 ms made every
    # command, a 30 ms probe included, end 5 ms late on average; 2 ms costs no measurable CPU.
    input_sleep = 0.002

    def send_interrupt(self, interrupt: KeyboardInterrupt) -> None:
        self.interrupted = interrupt
        with contextlib.suppress(OSError, ValueError):
            if isinstance(interrupt, Terminated):  # SIGTERM reached only this process: pass it on, then clean up
                os.kill(self.get_pid(), signal.SIGTERM)
            else:
                super().send_interrupt(interrupt)

    def run(self, command: str, **kwargs):
        result = super().run(command, **kwargs)
        if self.interrupted is not None:
            raise self.interrupted
        return result


def user_errors(body):
    """Expected failures end the task with their one-line message and exit status 1."""

    @functools.wraps(body)
    def wrapper(c, *args, **kwargs):
        interrupt_on_sigterm()  # SIGTERM cleans up as Ctrl-C does (the task's `finally` blocks run)
        try:
            return body(c, *args, **kwargs)
        except EXPECTED_FAILURES as error:
            raise Exit(f"error: {error}", code=1) from None

    return wrapper


# The task options that set a setting, by the setting: a bad value is reported under the option's name.
OPTIONS = {"WAIT_TIMEOUT": "--wait-timeout", "DEPLOY_REPLICAS": "--replicas", "DEPLOY_LOCK_WAIT": "--wait"}


def context(c, **options: str | None) -> Context:
    """What every sequencer of this task is given: the settings with the task's options over them (checked like
    every other layer), the runner of invoke's context (so --dry and MockContext work), and the dry-run flag. The
    one place tasks build it."""
    return Context(load_settings().override(OPTIONS, **options), InvokeRunner(c), dry=c.config.run.dry)


def local(c, engine=True, **options: str | None) -> Local:
    """The compose lifecycle for this task, with its options over the settings; `engine` tasks first check that
    docker and compose v2 answer."""
    s = Local(context(c, **options))
    if engine and not s.dry:
        preflight(s.run, cache=s.settings.root / ENGINE_CACHE)
    return s


@task
@user_errors
def zip(c):  # noqa: A001 - the task is called zip on the command line
    """Pack the code that stage and prod embed into ZIP_DIR/ZIP_NAME (deterministic, with a manifest)."""
    local(c, engine=False).zip()


@task(
    help={
        "path": "The folder of the Django project to adopt (its git checkout).",
        "force": "Adopt even when PATH has uncommitted changes. Default: off (refused).",
        "python": "A Python with the project's dependencies, to import-check its settings. Default: PATH/.venv's.",
    }
)
@user_errors
def adopt(c, path, force=False, python=None):
    """Detect a Django project at PATH; write the suite's files, its wheel and [tool.lifecycle]; again: upgrade."""
    lines = adopting.adopt(Path(path), InvokeRunner(c), force=force, python=python, dry=c.config.run.dry)
    print("\n".join(lines))


@task(name="wheel")
@user_errors
def wheel_build(c):
    """Build the lifecycle library as a wheel into dist/ (reproducible) and print its name and sha256."""
    ctx = context(c)
    built = wheel.build(ctx.settings.root, ctx.run, dry=ctx.dry)
    if built:
        print(built.line())


@task
def docs(c):
    """Write the generated reference pages, docs/settings.md and docs/tasks.md, from the settings table and the help."""
    try:
        import docgen  # the suite's checkout only: an adopted project's pages are its own
    except ModuleNotFoundError:
        raise Exit(
            "invoke docs writes the suite's own reference pages; run it in the suite's checkout", code=1
        ) from None
    changed = docgen.write(ns)
    print("\n".join(f"wrote {page}" for page in changed) or "docs/settings.md and docs/tasks.md are up to date")


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
    }
)
@user_errors
def up(c, stage="dev", build=True, wait_timeout=None, debug=False, wait=False, no_backup=False):
    """Start the database and one stage (prod: and its HTTPS proxy), wait until all are healthy, print the URL."""
    if wait and not debug:
        raise Exit("error: --wait pauses the server for a debugger; use it with --debug", code=1)
    mode = Debugger.of(debug, wait)
    local(c, WAIT_TIMEOUT=wait_timeout).up(Stage.parse(stage), build=build, debug=mode, no_backup=no_backup)


@task(help=VOLUME_HELP)
@user_errors
def down(c, volumes=False, yes=False, no_backup=False):
    """Stop and remove this checkout's containers and network; data stays unless --volumes."""
    local(c).down(volumes=volumes, yes=yes, ask=terminal_prompt(), no_backup=no_backup)


@task(
    help={
        "service": "Only this service (db, dev, test-qa, stage, prod, proxy). Default: all.",
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


@task(name="offline", help={"force": "Rebuild the images even when they exist. Default: off."})
@user_errors
def images_offline(c, force=False):
    """Build the offline images (Python, MariaDB, registry, HAProxy) from Debian packages and switch to them."""
    s = local(c)
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
    s = local(c)
    s.run(compose.compose_argv(s.settings, *shlex.split(args), stage=target), env=s.settings.env, interactive=True)


@task(name="up")
@user_errors
def registry_up(c):
    """Run the local registry on 127.0.0.1:REGISTRY_PORT (registry:2, or the offline image when not pullable)."""
    s = local(c)
    address = local_registry.start(s.settings, s.run, dry=s.dry)
    print(f"local registry: http://{address}/ (releases: invoke release --stage stage|prod)")


@task(
    name="down",
    help={
        "volumes": "Also delete the registry's volume, i.e. every pushed image (asks to confirm). Default: off.",
        "yes": "Confirm --volumes without asking. Default: off.",
    },
)
@user_errors
def registry_down(c, volumes=False, yes=False):
    """Stop the local registry; its images stay on their volume unless --volumes."""
    s = local(c)
    if volumes:
        confirm_project(
            local_registry.project(s.settings), "--volumes deletes every pushed image", yes, terminal_prompt()
        )
    s.run(local_registry.down_argv(s.settings, volumes=volumes), env=s.settings.env)


@task(
    help={
        "stage": "stage or prod. Default: stage.",
        "allow_dirty": "Release even with uncommitted changes (recorded as dirty). Default: off.",
        "allow": "A reason to ship past the vulnerability gate's findings, recorded with the release. Default: "
        "RELEASE_ALLOW (empty: a finding, or a check that could not run, refuses).",
    }
)
@user_errors
def release(c, stage="stage", allow_dirty=False, allow=None):
    """Build a stage (cached), push that image to REGISTRY as PROJ_NAME:STAGE-<zip12> and :STAGE, print its digest."""
    done = releasing.release(local(c).ctx, Stage.parse(stage), allow_dirty=allow_dirty, allow=allow)
    if done:
        print(done.reference)


@task(
    help={
        "stage": "Only this stage's releases (stage or prod). Default: all.",
        "verify": "Check each one's signature and provenance in the registry against SIGNING_PUBLIC_KEY. Default: off.",
    }
)
@user_errors
def releases(c, stage=None, verify=False):
    """List the releases recorded in .lifecycle/releases.jsonl by digest, oldest first, one line per image; --verify
    checks each image's signature and provenance in the registry."""
    s = local(c) if verify else None
    log = releasing.ReleaseLog.of(s.settings if s else context(c).settings)
    found = [r for r in log.all() if stage in (None, r.stage)]
    for line in releasing.listing(found):
        print(line)
    failed = 0
    for reference in dict.fromkeys(r.reference for r in found) if s else ():
        verdict = signing.verify(s.settings, s.run, reference)
        print(
            f"{reference}\n  signature: {'ok' if verdict.ok else verdict.outcome} {verdict.detail}".rstrip(), flush=True
        )
        signed, problem = provenance.check(s.settings, s.run, reference)
        problem = problem if signed.ok else f"{signed.outcome} {signed.detail}".rstrip()
        print(f"  provenance: {problem or 'ok'}", flush=True)
        failed += not verdict.ok or bool(problem)
    if not found:
        print(f"no releases recorded in {releasing.RELEASES_FILE} yet; make one: invoke release --stage stage")
    if failed:
        raise Exit(f"error: {failed} of {len(found)} release(s) failed verification", code=1)


@task(name="init")
@user_errors
def keys_init(c):
    """Make the release signing key pair (skopeo): private key 0600 under .lifecycle/, public key to commit."""
    s = local(c)
    fingerprint = signing.init_keys(s.settings, s.run, dry=s.dry)
    if fingerprint:
        print(fingerprint)


@task(name="trust")
@user_errors
def tls_trust(c):
    """Print how to trust the proxy's certificate (curl --cacert, Python, browsers, the system store)."""
    ctx = context(c)
    if tls.cert_files(ctx.settings).local and not ctx.dry:
        tls.ensure_local_certificate(ctx.settings.root, ctx.run)
    print("\n".join(tls.trust_instructions(ctx.settings)))


@task(
    name="backup",
    help={"binlogs": "Only copy the closed binary logs (after FLUSH BINARY LOGS) into BACKUP_DIR/binlogs, no dump; "
          "every full backup copies them too. Default: off (a full backup).",
          "scheduled": "Mark the backup `scheduled` and prune the scheduled ones BACKUP_HOURLY/DAILY/WEEKLY do not "
          "keep (for cron). Default: off (a backup by hand, never pruned)."},
)  # fmt: skip
@user_errors
def db_backup(c, binlogs=False, scheduled=False):
    """Back up the running database into BACKUP_DIR: a streamed, consistent dump (.sql.gz) and its manifest."""
    database = local(c).database()
    if binlogs:
        if not database.dry:
            database.require_running()
        pitr.PointInTime(database).copy_binlogs()
    else:
        path = database.backup(retention.SCHEDULED, "schedule") if scheduled else database.backup()
        if path is not None:
            if scheduled:
                retention.prune_scheduled(database)
            offsite.Remote(database).push(path)  # when BACKUP_REMOTE is set


@task(
    name="restore",
    help={
        "file": "The backup (.sql.gz, with its .json manifest next to it); invoke db.list shows them. With --to: the "
        "time to restore to.",
        "to": "FILE is a time (ISO 8601 with its zone: invoke db.restore --to 2026-12-03T14:05:00Z): restore the "
        "database as it was then, from the last full backup before it and the binary log up to it. Default: off.",
        "yes": "Replace the database without asking for the project name. Default: off (asks; refuses without a "
        "terminal).",
        "other_database": "Restore a backup of another database name into this one. Default: off (refused).",
        "no_backup": NO_BACKUP_HELP,
        "no_migrate": "Leave the migrations the backup lacks unapplied (/health answers 503 until they are); the "
        "output says what to run. Default: off (applied with the running app's image).",
    },
)
@user_errors
def db_restore(c, file, to=False, yes=False, other_database=False, no_backup=False, no_migrate=False):
    """Verify a backup, load it into a scratch database, swap it in atomically, apply the migrations it lacks."""
    if to:  # a flag: invoke has no optional positional argument, so the time takes FILE's place
        pitr.PointInTime(local(c).database()).restore_to(file, yes=yes, ask=terminal_prompt(), no_backup=no_backup,
                                                        no_migrate=no_migrate)  # fmt: skip
        return
    database = local(c).database()
    path = Path(file)
    if not path.exists() and database.settings["BACKUP_REMOTE"] and not database.dry:
        path = offsite.Remote(database).fetch(path.name)  # decrypted and verified before anything changes
    database.restore(
        path, yes=yes, ask=terminal_prompt(), other_database=other_database, no_backup=no_backup,
        no_migrate=no_migrate,
    )  # fmt: skip


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
    local(c).database().reset(yes=yes, ask=terminal_prompt(), stage=target, fixture=load, no_backup=no_backup)


@task(
    name="drill",
    help={"remote": "Drill the newest backup in BACKUP_REMOTE (fetched, decrypted and verified first). Default: off "
          "(the newest local one)."},
)  # fmt: skip
@user_errors
def db_drill(c, remote=False):
    """Restore the newest backup into a throwaway database server, check its counts and migrate --check; time it."""
    database = local(c).database()
    path = offsite.Remote(database).newest() if remote else None
    line = drill.Drill(database).run(path)
    if line:
        print(line)


@task(name="list", help={"remote": "List this project's backups in BACKUP_REMOTE instead. Default: off (local)."})
@user_errors
def db_list(c, remote=False):
    """List the backups: size, age, kind (manual or automatic), tables, rows, server and migrations."""
    if remote:
        print("\n".join(offsite.Remote(local(c).database()).list()))
        return
    print("\n".join(local(c, engine=False).database().list()))


@task(name="shell", help={"root": "Connect as root instead of the app user. Default: off."})
@user_errors
def db_shell(c, root=False):
    """A SQL prompt in the running db service, as the app user on its database (root only with --root); without a
    terminal it runs the SQL piped in (echo 'SELECT 1' | invoke db.shell) and exits with the client's status."""
    status = local(c).db_shell(root=root)
    if status:
        raise Exit(code=status)


@task(name="sbom", help={"stage": STAGE_HELP})
@user_errors
def sbom_summary(c, stage="dev"):
    """Summarise the stage's SBOM (reports/sbom-STAGE.json, written by every build): counts and key versions."""
    target = Stage.parse(stage)
    s = local(c, engine=False)
    print("\n".join(sbom.summary(sbom.load(s.settings.root, target), target.name)))


@task(name="lock")
@user_errors
def deps_lock(c):
    """Regenerate every requirements/*.txt from its .in with hashes (uv; deterministic: pins move only on upgrade)."""
    s = local(c, engine=False)
    deps.lock_all(s.run, s.settings.root, dry=s.dry)


@task(name="upgrade", help={"package": "Upgrade only this package (e.g. django). Default: every package."})
@user_errors
def deps_upgrade(c, package=None):
    """Upgrade one package or all of them in every lock, and print each version change."""
    s = local(c, engine=False)
    deps.lock_all(s.run, s.settings.root, upgrade_all=package is None, upgrade_package=package, dry=s.dry)


def cluster_ops(c) -> cluster_core.ClusterOps:
    ctx = context(c)
    return cluster_core.ClusterOps(cluster_layout.plan(ctx.settings), ctx)


@task(name="up")
@user_errors
def cluster_up(c):
    """Start a 3-node swarm here: 1 manager, 2 workers, each an engine in a network namespace; and a registry.

    Settings: CLUSTER_NAME, CLUSTER_SUBNET, CLUSTER_REGISTRY_PORT, CLUSTER_REGISTRY_IMAGE, CLUSTER_DIR. Needs root.
    A failure or Ctrl-C tears down everything it made; the host's own engine is never changed.
    """
    ops = cluster_ops(c)
    timings = ops.up(ops.ctx.settings["CLUSTER_REGISTRY_IMAGE"])
    if not ops.dry:
        print("cluster up in " + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items()))


@task(name="down")
@user_errors
def cluster_down(c):
    """Stop the cluster's engines and relays; remove its namespaces, bridge, data roots (safe to repeat)."""
    cluster_ops(c).down()


@task(name="status")
@user_errors
def cluster_status(c):
    """The cluster's nodes and their state, and one line per service whose last update failed or rolled back."""
    print("\n".join(cluster_ops(c).status()))


def deployer(c, **options: str | None) -> swarm_deploy.Deployer:
    return swarm_deploy.Deployer(local(c, **options).ctx)


@task(name="init")
@user_errors
def swarm_init(c):
    """Put this engine in swarm mode as a single-node swarm on 127.0.0.1, labelled to hold the database."""
    deployer(c).init_swarm()


@task(name="leave", help={"yes": "Leave without typing the project name (needed without a terminal). Default: off."})
@user_errors
def swarm_leave(c, yes=False):
    """Leave swarm mode (--force): every stack, service and secret of this single-node swarm goes with it."""
    deployer(c).leave_swarm(yes=yes, ask=terminal_prompt())


@task(
    name="deploy",
    default=True,
    help={
        "stage": "Only prod deploys to a swarm. Default: prod.",
        "replicas": "App replicas, at least 1. Default: DEPLOY_REPLICAS (2).",
        "wait": LOCK_WAIT_HELP,
    },
)
@user_errors
def deploy_(c, stage="prod", replicas=None, wait=None):
    """Deploy the last release to the swarm: secrets, database, migrate job once, rolling update; print the URL."""
    deployer(c, DEPLOY_REPLICAS=replicas, DEPLOY_LOCK_WAIT=wait).deploy(Stage.parse(stage))


@task(name="status")
@user_errors
def deploy_status(c):
    """Show the stack's services, replicas, the image digest each task runs, and the app's update state."""
    deployer(c).status()


@task(name="rollback", help={"wait": LOCK_WAIT_HELP})
@user_errors
def deploy_rollback(c, wait=None):
    """Roll the app back to the digest it ran before the last update, and wait until it has."""
    deployer(c, DEPLOY_LOCK_WAIT=wait).rollback()


@task(name="unlock")
@user_errors
def deploy_unlock(c):
    """Release the deploy lock left by a killed deploy (refused while that deploy still runs on this host)."""
    deployer(c).unlock()


@task(name="rm", help={"yes": "Remove without asking for the project name (needed without a terminal). Default: off."})
@user_errors
def deploy_rm(c, yes=False):
    """Remove the stack (services and network); its database volume and secrets stay."""
    deployer(c).remove(yes=yes, ask=terminal_prompt())


@task(name="status", help={"json": "Print the report as JSON (for scripts). Default: off."})
@user_errors
def status_report(c, json=False):
    """One screen about the running site (compose and swarm): what runs, health, migrations, backup, certificate."""
    started = time.monotonic()
    lines = site_status.Status(Context(load_settings(), SubprocessRunner(echo=False))).lines()
    seconds = time.monotonic() - started
    print(site_status.as_json(lines, seconds) if json else site_status.as_text(lines, seconds))
    if not all(line.ok for line in lines):
        raise Exit(code=1)


@task(name="list")
@user_errors
def jobs_list(c):
    """The jobs of [[tool.lifecycle.jobs]]: schedule, manage.py command, timeout, missed-run policy, next run (UTC)."""
    print("\n".join(scheduled.listing(scheduled.read_jobs(load_settings().root), datetime.now(UTC))))


MAINTENANCE_TARGET_HELP = "compose (prod) or swarm (the stack's proxies on this node). Default: every running one."


def maintenance_mode(c) -> maintenance.Maintenance:
    return maintenance.Maintenance(local(c).ctx)


@task(name="on", help={"target": MAINTENANCE_TARGET_HELP})
@user_errors
def maintenance_on(c, target=None):
    """Answer every request with the maintenance page (503, Retry-After) but /health and MAINTENANCE_ALLOW."""
    print("\n".join(maintenance_mode(c).switch(True, target)))


@task(name="off", help={"target": MAINTENANCE_TARGET_HELP})
@user_errors
def maintenance_off(c, target=None):
    """Serve the site again (the proxy's runtime API: no reload, no restart)."""
    print("\n".join(maintenance_mode(c).switch(False, target)))


images = Collection("images", images_offline)
dependencies = Collection("deps", deps_lock, deps_upgrade)
cluster = Collection("cluster", cluster_up, cluster_down, cluster_status)
registry = Collection("registry", registry_up, registry_down)
tls_tasks = Collection("tls", tls_trust)
db = Collection("db", db_backup, db_restore, db_drill, db_reset, db_list, db_shell)
swarm_tasks = Collection("swarm", swarm_init, swarm_leave)
deploy_tasks = Collection("deploy", deploy_, deploy_status, deploy_rollback, deploy_rm, deploy_unlock)
keys = Collection("keys", keys_init)
maintenance_tasks = Collection("maintenance", maintenance_on, maintenance_off)
jobs_tasks = Collection("jobs", jobs_list)
ns = Collection(
    adopt, wheel_build, docs, zip, build, up, down, logs, ps, shell, manage, qa, clean, doctor, compose_passthrough,
    sbom_summary, release, releases, status_report,
)  # fmt: skip
for collection in (
    images,
    dependencies,
    registry,
    tls_tasks,
    db,
    swarm_tasks,
    deploy_tasks,
    cluster,
    keys,
    maintenance_tasks,
    jobs_tasks,
):
    ns.add_collection(collection)
ns.configure({"runners": {"local": InterruptibleLocal}})
