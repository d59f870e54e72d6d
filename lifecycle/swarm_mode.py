"""This engine's swarm mode: whether it is a swarm manager, `invoke swarm.init` (a single-node swarm on 127.0.0.1,
the node labelled to hold the database), `invoke swarm.leave` (refused on a manager of several nodes; restarts
the compose containers whose DNS names leaving drops), and finding a stack's task on this node. `Deployer`
(lifecycle/deploy.py) inherits it.
"""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.commands import swarm
from lifecycle.confirm import confirm_project
from lifecycle.context import Context, UsesContext
from lifecycle.errors import UserError

LEAVE_CONSEQUENCE = "leaving swarm mode removes every stack, service and secret of this swarm, the stack"


def task_here(ctx: Context, service: str) -> str:
    """The id of this node's running container of the stack's SERVICE (`invoke jobs.list --swarm`, `db.* --swarm`);
    one line naming the node it runs on, or saying the stack is not deployed, when this node has none."""
    name = swarm.service_name(ctx.settings.project_name, service)
    ids = ctx.run(swarm.task_containers(ctx.settings.project_name, service), warn=True, capture=True).stdout.split()
    if ids:
        return ids[0]
    nodes = ctx.run(swarm.task_nodes(name), warn=True, capture=True)
    raise UserError(swarm.not_here(name, nodes.stdout if nodes.ok else ""))


class SwarmMode(UsesContext):
    """Swarm mode on the engine the context's runner talks to."""

    def swarm_state(self) -> str:
        answer = self.run(swarm.swarm_state(), warn=True, capture=True)
        return answer.stdout if answer.ok else ""

    def require_swarm(self) -> str:
        """This node's id; one line and nothing done when the engine is not a swarm manager."""
        return "" if self.dry else swarm.require_manager(self.swarm_state())

    def init_swarm(self) -> None:
        if self.swarm_state().startswith("active"):
            self.say("already in swarm mode")
        else:
            self.run(swarm.init())
        node = self.require_swarm() or "NODE"
        self.run(swarm.label_node(self.settings["DB_NODE_LABEL"], node), capture=True)
        self.say(f"swarm mode on; node {node} holds the database ({self.settings['DB_NODE_LABEL']}=true)")

    def leave_swarm(self, yes: bool = False, ask: Callable[[str], str] | None = None) -> None:
        """Leave swarm mode; then restart the running containers on user-defined networks (compose stacks),
        whose names the engine's DNS forgets on leaving (they keep their data: a restart, not a new container).
        Refused on a manager of a swarm of several nodes; asks for the project name unless `yes`."""
        state = self.swarm_state()
        if not state.startswith("active"):
            self.say("not in swarm mode; nothing to do")
            return
        refusal = swarm.leave_refusal(state)
        if refusal:
            raise UserError(f"{refusal}; nothing was changed")
        confirm_project(self.settings.project_name, LEAVE_CONSEQUENCE, yes, ask)
        affected = swarm.on_user_networks(self.run(swarm.standalone_containers(), warn=True, capture=True).stdout)
        self.run(swarm.leave())
        if affected and not self.dry:
            self.say(f"restarting {len(affected)} containers: leaving swarm mode drops their DNS names (moby#45144)")
            self.run(swarm.restart(affected))
