"""Running the site: status, maintenance mode (maintenance.*), scheduled jobs (jobs.*), trusting its TLS
certificate (tls.*)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from invoke import Collection, Exit, task

from lifecycle.cli.tasks.common import context, local, user_errors
from lifecycle.context import Context
from lifecycle.lazy import lazy_module
from lifecycle.runner import SubprocessRunner
from lifecycle.stages import Stage

# Loaded on first use: a task imports only what it runs (`invoke build` none of these).
maintenance = lazy_module("lifecycle.maintenance")
tls = lazy_module("lifecycle.tls")
site_status = lazy_module("lifecycle.status")
jobruns = lazy_module("lifecycle.jobruns")


@task(name="status", help={"json": "Print the report as JSON (for scripts). Default: off."})
@user_errors
def status_report(c, json=False):
    """One screen about the running site (compose and swarm): what runs, health, migrations, backup, certificate."""
    started = time.monotonic()
    lines = site_status.Status(Context(context(c).settings, SubprocessRunner(echo=False))).lines()
    seconds = time.monotonic() - started
    print(site_status.as_json(lines, seconds) if json else site_status.as_text(lines, seconds))
    if not all(line.ok for line in lines):
        raise Exit(code=1)


JOBS_STAGE_HELP = "The compose stage whose scheduler (and database) to use: dev, stage or prod. Default: prod."
JOBS_SWARM_HELP = "Use the deployed swarm stack's scheduler task on this node, not a compose stage's. Default: off."


@task(name="list", help={"stage": JOBS_STAGE_HELP, "swarm": JOBS_SWARM_HELP})
@user_errors
def jobs_list(c, stage="prod", swarm=False):
    """The jobs of [[tool.lifecycle.jobs]]: schedule, command, timeout, missed-run policy, next run (UTC), and the
    last run with its result and duration, as the stage's scheduler recorded them."""
    jobs = jobruns.Jobs(local(c).ctx)
    print("\n".join(jobs.listing(Stage.parse(stage), datetime.now(UTC), on_stack=swarm)))


@task(name="run", help={"name": "The job's name (invoke jobs.list).", "stage": JOBS_STAGE_HELP,
                        "swarm": JOBS_SWARM_HELP})  # fmt: skip
@user_errors
def jobs_run(c, name, stage="prod", swarm=False):
    """Run a job now, once, through the scheduler's database claim (a one-off container of the stage's
    scheduler); its output, and the exit status of the run."""
    status = jobruns.Jobs(local(c).ctx).run(Stage.parse(stage), name, on_stack=swarm)
    if status:
        raise Exit(code=status)


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


@task(name="trust")
@user_errors
def tls_trust(c):
    """Print how to trust the proxy's certificate (curl --cacert, Python, browsers, the system store)."""
    ctx = context(c)
    if tls.cert_files(ctx.settings).local and not ctx.dry:
        tls.ensure_local_certificate(ctx.settings.root, ctx.run)
    print("\n".join(tls.trust_instructions(ctx.settings)))


maintenance_tasks = Collection("maintenance", maintenance_on, maintenance_off)
jobs_tasks = Collection("jobs", jobs_list, jobs_run)
tls_tasks = Collection("tls", tls_trust)
