"""The expected failures, whose message is the single line a user sees, and how an entry point ends on one."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence


class UserError(Exception):
    """Bad input or a missing prerequisite: say what went wrong and what to do, in one line."""


class CommandFailed(Exception):
    """A command the suite ran exited non-zero (its own output, above, says why)."""

    def __init__(self, argv: Sequence[str], return_code: int):
        super().__init__(f"command failed with exit status {return_code}: {shlex.join(argv)}")
        self.argv = list(argv)
        self.return_code = return_code


EXPECTED_FAILURES = (UserError, CommandFailed)


def exit_status(body: Callable[[], int | None], prefix: str = "error") -> int:
    """Run a `python3 -m lifecycle.X` entry point: an expected failure is one line on stderr and status 1."""
    try:
        return body() or 0
    except EXPECTED_FAILURES as error:
        print(f"{prefix}: {error}", file=sys.stderr)
        return 1
