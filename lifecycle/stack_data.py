"""The swarm stack's database for db.backup, db.restore, db.drill and db.list (`--swarm`): the same steps as
compose's (lifecycle/backup.py, restore.py, pitr.py, drill.py), run against the stack's db task on this node.

Only two answers differ from compose's: which container is the database (the stack's db task here, found as
`jobs.list --swarm` finds the scheduler's) and what runs (the stack's db image, the app service's release and
the code its labels name, an app task here to apply the migrations a restored backup lacks).
"""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.backup import LABEL_COMMIT, LABEL_ZIP, Database, Running, RunningApp
from lifecycle.commands import compose, docker, swarm
from lifecycle.deploy import db_in_stack
from lifecycle.errors import UserError
from lifecycle.probes import ServiceContainer
from lifecycle.swarm_mode import task_here

DB, APP = compose.DB_SERVICE, "app"
LABELS = "\t".join(f'{{{{index .Config.Labels "{label}"}}}}' for label in (LABEL_ZIP, LABEL_COMMIT))


def parse_images(text: str) -> dict[str, str]:
    """`NAME\tIMAGE` lines (swarm.service_images) as service name -> image."""
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def stack_running(stack: str, images: dict[str, str], labels: str) -> Running:
    """What runs, from the services' images and the app image's `ZIP\tCOMMIT` labels line (empty: unknown)."""
    db_image = images.get(swarm.service_name(stack, DB)) or "unknown"
    if not images.get(swarm.service_name(stack, APP)):
        return Running(db_image)
    known = [
        value if value not in ("", "<no value>") else "unknown" for value in [*labels.strip().split("\t"), "", ""][:2]
    ]
    return Running(db_image, swarm.service_name(stack, APP), *known)


@dataclass
class StackDatabase(Database):
    """The database of the swarm stack's db service, through its task on this node."""

    NO_APP = (
        "no app task of the stack runs on this node: the next invoke deploy applies the migrations the backup lacks"
    )

    def container(self) -> ServiceContainer | None:
        """The stack's db task container on this node; None when it runs elsewhere or not at all."""
        try:
            return ServiceContainer(task_here(self.ctx, DB), "", True)
        except UserError:
            return None

    def require_running(self) -> None:
        """One line, before anything runs in a container, when the stack's db task is not on this node."""
        if not db_in_stack(self.settings):
            raise UserError(f"the stack's database is external (DB_HOST={self.settings['DB_HOST']}): back it up where "
                            "it runs; --swarm is for the stack's own db service (nothing was done)")  # fmt: skip
        task_here(self.ctx, DB)  # one line naming where it runs instead

    def images(self, *services: str) -> dict[str, str]:
        """The image each of the stack's SERVICES runs (as its service spec names it); a missing one is absent."""
        answer = self._run(swarm.service_images(self.settings.project_name, services), capture=True, warn=True)
        return parse_images(answer)

    def containers(self) -> Running:
        stack = self.settings.project_name
        images = self.images(DB, APP)
        app = images.get(swarm.service_name(stack, APP))
        labels = self._run(docker.image_inspect_argv(app, LABELS), capture=True, warn=True) if app else ""
        return stack_running(stack, images, labels)

    def running_app(self) -> RunningApp | None:
        """An app task on this node: it runs the release the stack serves (None: none runs here)."""
        try:
            task = task_here(self.ctx, APP)
        except UserError:
            return None
        manage = swarm.task_exec(task, compose.MANAGE)
        return RunningApp(f"{swarm.service_name(self.settings.project_name, APP)} task {task[:12]}", tuple(manage),
                          f"docker exec {task[:12]} python manage.py {{command}} (on this node)")  # fmt: skip

    def app_image(self) -> str:
        """The release the stack's app service runs (else the checkout's prod image)."""
        app = swarm.service_name(self.settings.project_name, APP)
        return self.images(APP).get(app) or super().app_image()

    def require_physical(self) -> None:
        raise UserError("physical backups copy compose's db volume; the stack's database takes logical ones: "
                        "invoke db.backup --swarm (nothing was done)")  # fmt: skip
