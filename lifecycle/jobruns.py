"""`invoke jobs.list` and `invoke jobs.run` against a compose stage's scheduler (lifecycle_site/scheduler.py),
whose database holds the runs; the declarations and the listing's lines are lifecycle/jobs.py's."""

from __future__ import annotations

import datetime as dt

from lifecycle.commands import compose, swarm
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.jobs import listing, parse_runs, read_jobs
from lifecycle.stages import Stage
from lifecycle.swarm_mode import task_here


class Jobs:
    """`invoke jobs.list` and `jobs.run` against a compose stage's scheduler (its database holds the runs)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.jobs = read_jobs(ctx.settings.root)

    def stack_task(self) -> str:
        """The id of the stack's scheduler task running on this node; one line saying what to do when none."""
        return task_here(self.ctx, "scheduler")

    def listing(self, stage: Stage, now: dt.datetime, on_stack: bool = False) -> list[str]:
        if not self.jobs:
            return listing(self.jobs, now)
        if on_stack:  # a task that is stopping answers nothing: the same note as a compose stage's
            argv = swarm.task_exec(self.stack_task(), [*compose.SCHEDULER, "last"])
            note = "last runs: unknown, the stack's scheduler task did not answer; see invoke deploy.status"
        else:
            argv = compose.scheduler_argv(self.ctx.settings, stage, ["last"], running=True)
            service = compose.scheduler_service(stage)
            note = f"last runs: unknown, no {service} running; start it: invoke up --stage {stage}"
        answer = self.ctx.run(argv, env=self.ctx.settings.env, warn=True, capture=True)
        if not answer.ok:
            return listing(self.jobs, now, None, note)
        return listing(self.jobs, now, parse_runs(answer.stdout))

    def run(self, stage: Stage, name: str, on_stack: bool = False) -> int:
        """One run of NAME now, through the scheduler's claim and lock; its exit status (0: the run succeeded)."""
        if name not in [job.name for job in self.jobs]:
            known = ", ".join(job.name for job in self.jobs) or "none"
            raise UserError(f"no job {name!r}; the declared jobs: {known} (invoke jobs.list)")
        if on_stack:
            argv = swarm.task_exec(self.stack_task(), [*compose.SCHEDULER, "run", name])
            return self.ctx.run(argv, warn=True).return_code
        if not compose.scheduled(self.ctx.settings, stage):
            raise UserError(
                f"{stage} has no scheduler; jobs run in dev, stage or prod: invoke jobs.run {name} --stage prod"
            )
        argv = compose.scheduler_argv(self.ctx.settings, stage, ["run", name], running=False)
        return self.ctx.run(argv, env=self.ctx.settings.env, warn=True).return_code
