"""The one context every sequencer takes, and the one deadline loop, driven by a clock that never sleeps."""

from __future__ import annotations

import pytest

from lifecycle.context import Clock, Context, wait_until
from lifecycle.errors import UserError
from lifecycle.settings import load_settings


class FakeClock:
    """`sleep` moves `now` on; nothing waits."""

    def __init__(self) -> None:
        self.time = 100.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds

    @property
    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


def answers(*values):
    """A condition that answers each value in turn, then the last one forever; it counts its calls."""
    calls = []

    def condition():
        calls.append(None)
        return values[min(len(calls), len(values)) - 1]

    return condition, calls


@pytest.mark.parametrize(
    ("values", "deadline", "interval", "returned", "asked", "slept"),
    [
        (("up",), 10, 1, "up", 1, []),
        ((None, "", "up"), 10, 1, "up", 3, [1, 1]),
        ((None, False, 0, "healthy"), 10, 2.5, "healthy", 4, [2.5, 2.5, 2.5]),
        ((None,), 3, 1, None, 4, [1, 1, 1]),  # asked at 0, 1, 2 and at the deadline, 3
        ((None,), 2.5, 1, None, 4, [1, 1, 0.5]),  # the last sleep ends at the deadline, not past it
        ((None,), 0, 1, None, 1, []),  # no time at all: asked once
    ],
    ids=[
        "at once",
        "after two misses",
        "falsy answers are waiting",
        "no answer by the deadline",
        "the last sleep is cut to the deadline",
        "a zero deadline asks once",
    ],
)
def test_wait_until_asks_until_an_answer_or_the_deadline(values, deadline, interval, returned, asked, slept):
    fake = FakeClock()
    condition, calls = answers(*values)
    assert wait_until(condition, deadline, interval, None, fake.clock) == returned
    assert (len(calls), fake.slept) == (asked, slept)


def test_wait_until_says_its_timeout_message_in_one_line():
    fake = FakeClock()
    with pytest.raises(UserError) as error:
        wait_until(lambda: None, 5, 1, "db did not answer within 5s; see invoke logs", fake.clock)
    assert str(error.value) == "db did not answer within 5s; see invoke logs"
    assert fake.time == 105


def test_a_condition_may_end_the_wait_itself():
    def refused():
        raise UserError("Access denied")

    with pytest.raises(UserError, match="Access denied"):
        wait_until(refused, 5, 1, "never", FakeClock().clock)


def test_the_context_waits_on_its_own_clock(tmp_path):
    fake = FakeClock()
    ctx = Context(load_settings(root=tmp_path, environ={}), run=None, clock=fake.clock)
    condition, calls = answers(None, None, "ok")
    assert ctx.wait_until(condition, 60, 2, "no") == "ok"
    assert (len(calls), fake.slept) == (3, [2, 2])


def test_override_replaces_settings_and_keeps_the_rest(tmp_path):
    said = []
    ctx = Context(load_settings(root=tmp_path, environ={}), run=None, dry=True, say=said.append)
    changed = ctx.override(WAIT_TIMEOUT="7", APP_PORT=None)
    assert changed.settings["WAIT_TIMEOUT"] == "7" and changed.settings["APP_PORT"] == ctx.settings["APP_PORT"]
    assert (changed.run, changed.dry, changed.say, changed.clock) == (ctx.run, ctx.dry, ctx.say, ctx.clock)
    assert ctx.settings["WAIT_TIMEOUT"] == load_settings(root=tmp_path, environ={})["WAIT_TIMEOUT"]
