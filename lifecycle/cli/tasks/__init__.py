"""Invoke tasks for the container lifecycle: `invoke --list`, `invoke --help TASK`.

Thin by design: each task resolves settings (defaults < .lifecycle/images.env < .env < environment <
flags), then calls the shared core in `lifecycle/`, which builds every docker command as a list and
prints it before it runs. `invoke --dry TASK` prints the commands without running them.

One module a group of tasks: `checkout` (the compose lifecycle: zip, build, up, down, ...), `db` (db.*), `release`
(release, releases, registry.*, keys.*), `swarm` (swarm.*, deploy.*, cluster.*), `operate` (status, maintenance.*,
jobs.*, tls.*), `suite` (adopt, wheel, docs, images.*, deps.*); `common` holds what they share. This module
gathers them into `ns`, the collection a project's tasks.py hands to Invoke.
"""

from __future__ import annotations

from invoke import Collection

from lifecycle.cli.tasks import checkout, db, operate, release, suite, swarm
from lifecycle.cli.tasks.common import InterruptibleLocal

ns = Collection(
    suite.adopt, suite.wheel_build, suite.docs, checkout.zip, checkout.build, checkout.up, checkout.down,
    checkout.logs, checkout.ps, checkout.shell, checkout.manage, checkout.qa, checkout.clean, checkout.doctor,
    checkout.compose_passthrough, checkout.sbom_summary, release.release, release.releases, operate.status_report,
)  # fmt: skip
for collection in (
    suite.images_tasks,
    suite.deps_tasks,
    release.registry_tasks,
    operate.tls_tasks,
    db.db_tasks,
    swarm.swarm_tasks,
    swarm.deploy_tasks,
    swarm.cluster_tasks,
    release.keys_tasks,
    operate.maintenance_tasks,
    operate.jobs_tasks,
):
    ns.add_collection(collection)
ns.configure({"runners": {"local": InterruptibleLocal}})
