"""What every task module shares: the one place a task builds its `Context` (or its `Local`), the wrapper that
turns an expected failure into one line and exit status 1, Invoke's runner that an interrupt always stops, and the
help texts several tasks use."""

from __future__ import annotations

import contextlib
import functools
import os
import signal

from invoke import Exit
from invoke.runners import Local as InvokeLocal

from lifecycle.context import Context
from lifecycle.doctor import preflight
from lifecycle.errors import EXPECTED_FAILURES
from lifecycle.local import Local
from lifecycle.runner import InvokeRunner, Terminated, interrupt_on_sigterm
from lifecycle.settings import ENGINE_CACHE, load_settings
from lifecycle.stages import NAMES

STAGE_HELP = f"One of {', '.join(NAMES)}. Default: dev."
NO_BACKUP_HELP = "Skip the automatic safety backup (the output says so). Default: off (back up first)."


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
