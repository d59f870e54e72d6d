"""What every sequencer is given: the settings, a runner, where to say things, the dry-run flag and a clock.

`Local`, `Database`, `Deployer`, `ClusterOps` and the release functions each take one `Context`, built once per
front end (tasks.py's `context()`, the noxfile, the bench); a new capability starts from it, not from a copy of
how another one holds its settings and runner. `UsesContext` is how a sequencer class holds it: one
`ctx` attribute, and `settings`, `run`, `dry`, `streams` and `say` read through it. `wait_until` is the one
deadline loop: it asks the context's clock, so a unit test drives it without sleeping.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from lifecycle.errors import UserError
from lifecycle.runner import ProcessStreams, Runner, Streams
from lifecycle.settings import Settings

T = TypeVar("T")


def say(message: str) -> None:
    """A progress line for the user: on stderr, so a task's stdout stays its answer (a URL, a digest)."""
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Clock:
    """Time as the waits see it: real by default; a test passes a clock whose sleep only moves `now` on."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Context:
    settings: Settings
    run: Runner
    dry: bool = False
    say: Callable[[str], None] = say
    streams: Streams = field(default_factory=ProcessStreams)
    clock: Clock = field(default_factory=Clock)

    def override(self, **values: str | None) -> Context:
        """The same context with some settings replaced (None leaves a setting as it is, as Settings.override)."""
        return replace(self, settings=self.settings.override(**values))

    def with_settings(self, settings: Settings) -> Context:
        return replace(self, settings=settings)

    def wait_until(
        self, condition: Callable[[], T], deadline: float, interval: float, timeout_message: str | None
    ) -> T | None:
        return wait_until(condition, deadline, interval, timeout_message, self.clock)


class UsesContext:
    """A sequencer that holds one `ctx`: its settings, runner, dry-run flag, streams and output read through it."""

    ctx: Context

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def run(self) -> Runner:
        return self.ctx.run

    @property
    def dry(self) -> bool:
        return self.ctx.dry

    @property
    def streams(self) -> Streams:
        return self.ctx.streams

    def say(self, message: str) -> None:
        self.ctx.say(message)


def wait_until(
    condition: Callable[[], T],
    deadline: float,
    interval: float,
    timeout_message: str | None,
    clock: Clock = Clock(),
) -> T | None:
    """Ask condition() every `interval` seconds until it answers something true, and return that answer.

    After `deadline` seconds: a UserError with `timeout_message`, or None when there is no message (the caller
    decides what a timeout means). condition() is always asked at least once, and once more at the deadline."""
    end = clock.now() + deadline
    while True:
        answer = condition()
        if answer:
            return answer
        if clock.now() >= end:
            if timeout_message is None:
                return None
            raise UserError(timeout_message)
        clock.sleep(max(0.0, min(interval, end - clock.now())))
