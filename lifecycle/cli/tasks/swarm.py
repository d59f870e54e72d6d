"""Swarm mode (swarm.*), the prod stack on it (deploy.*) and the local three-node cluster (cluster.*)."""

from __future__ import annotations

from invoke import Collection, task

from lifecycle.cli.tasks.common import context, local, user_errors
from lifecycle.confirm import terminal_prompt
from lifecycle.lazy import lazy_module
from lifecycle.settings_table import DEFAULTS
from lifecycle.stages import Stage

# Loaded on first use: a task imports only what it runs (`invoke build` none of these).
cluster_core = lazy_module("lifecycle.cluster")
cluster_layout = lazy_module("lifecycle.cluster_layout")
swarm_deploy = lazy_module("lifecycle.deploy")

LOCK_WAIT_HELP = (
    f"Seconds to wait while another deploy or rollback of the stack holds the deploy lock; 0 refuses at once. "
    f"Default: DEPLOY_LOCK_WAIT ({DEFAULTS['DEPLOY_LOCK_WAIT']})."
)


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


cluster_tasks = Collection("cluster", cluster_up, cluster_down, cluster_status)
swarm_tasks = Collection("swarm", swarm_init, swarm_leave)
deploy_tasks = Collection("deploy", deploy_, deploy_status, deploy_rollback, deploy_rm, deploy_unlock)
