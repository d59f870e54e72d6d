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
from pathlib import Path

from invoke import Collection, Exit, task
from invoke.runners import Local as InvokeLocal

from lifecycle import adopt as adopting
from lifecycle import cluster as cluster_core
from lifecycle import deploy as swarm_deploy
from lifecycle import deps, offline, provenance, sbom, signing, tls, wheel
from lifecycle import doctor as doctor_checks
from lifecycle import registry as local_registry
from lifecycle import release as releasing
from lifecycle.commands import compose
from lifecycle.confirm import confirm_project, terminal_prompt
from lifecycle.context import Context
from lifecycle.doctor import preflight
from lifecycle.errors import EXPECTED_FAILURES
from lifecycle.local import Debugger, Local
from lifecycle.runner import InvokeRunner, Terminated, interrupt_on_sigterm
from lifecycle.settings import DEFAULTS, ENGINE_CACHE, load_settings
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
OPTIONS = {"WAIT_TIMEOUT": "--wait-timeout", "DEPLOY_REPLICAS": "--replicas"}


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
    }
)
@user_errors
def logs(c, service=None, follow=False, tail="200"):
    """Show the containers' logs."""
    s = local(c)
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


@task(help={"pytest_args": "Extra pytest arguments, quoted, e.g. '-k health -x'. Default: none."})
@user_errors
def qa(c, pytest_args=""):
    """Run the site's tests inside the test-qa image against a throwaway database (same as nox -s qa)."""
    status = local(c).qa(shlex.split(pytest_args))
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
    }
)
@user_errors
def release(c, stage="stage", allow_dirty=False):
    """Build a stage (cached), push that image to REGISTRY as PROJ_NAME:STAGE-<zip12> and :STAGE, print its digest."""
    done = releasing.release(local(c).ctx, Stage.parse(stage), allow_dirty=allow_dirty)
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


@task(name="backup")
@user_errors
def db_backup(c):
    """Back up the running database into BACKUP_DIR: a streamed, consistent dump (.sql.gz) and its manifest."""
    local(c).database().backup()


@task(
    name="restore",
    help={
        "file": "The backup (.sql.gz, with its .json manifest next to it); invoke db.list shows them.",
        "yes": "Replace the database without asking for the project name. Default: off (asks; refuses without a "
        "terminal).",
        "other_database": "Restore a backup of another database name into this one. Default: off (refused).",
        "no_backup": NO_BACKUP_HELP,
        "no_migrate": "Leave the migrations the backup lacks unapplied (/health answers 503 until they are); the "
        "output says what to run. Default: off (applied with the running app's image).",
    },
)
@user_errors
def db_restore(c, file, yes=False, other_database=False, no_backup=False, no_migrate=False):
    """Verify a backup, load it into a scratch database, swap it in atomically, apply the migrations it lacks."""
    local(c).database().restore(
        Path(file), yes=yes, ask=terminal_prompt(), other_database=other_database, no_backup=no_backup,
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


@task(name="list")
@user_errors
def db_list(c):
    """List the backups: size, age, kind (manual or automatic), tables, rows, server and migrations."""
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
    return cluster_core.ClusterOps(cluster_core.plan(ctx.settings), ctx)


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
    },
)
@user_errors
def deploy_(c, stage="prod", replicas=None):
    """Deploy the last release to the swarm: secrets, database, migrate job once, rolling update; print the URL."""
    deployer(c, DEPLOY_REPLICAS=replicas).deploy(Stage.parse(stage))


@task(name="status")
@user_errors
def deploy_status(c):
    """Show the stack's services, replicas, the image digest each task runs, and the app's update state."""
    deployer(c).status()


@task(name="rollback")
@user_errors
def deploy_rollback(c):
    """Roll the app back to the digest it ran before the last update, and wait until it has."""
    deployer(c).rollback()


@task(name="rm", help={"yes": "Remove without asking for the project name (needed without a terminal). Default: off."})
@user_errors
def deploy_rm(c, yes=False):
    """Remove the stack (services and network); its database volume and secrets stay."""
    deployer(c).remove(yes=yes, ask=terminal_prompt())


images = Collection("images", images_offline)
dependencies = Collection("deps", deps_lock, deps_upgrade)
cluster = Collection("cluster", cluster_up, cluster_down, cluster_status)
registry = Collection("registry", registry_up, registry_down)
tls_tasks = Collection("tls", tls_trust)
db = Collection("db", db_backup, db_restore, db_reset, db_list, db_shell)
swarm_tasks = Collection("swarm", swarm_init, swarm_leave)
deploy_tasks = Collection("deploy", deploy_, deploy_status, deploy_rollback, deploy_rm)
keys = Collection("keys", keys_init)
ns = Collection(
    adopt, wheel_build, zip, build, up, down, logs, ps, shell, manage, qa, clean, doctor, compose_passthrough,
    sbom_summary, release, releases,
)  # fmt: skip
for collection in (images, dependencies, registry, tls_tasks, db, swarm_tasks, deploy_tasks, cluster, keys):
    ns.add_collection(collection)
ns.configure({"runners": {"local": InterruptibleLocal}})
