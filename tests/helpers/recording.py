"""A recording runner for unit tests: the thin edge that runs commands, replaced by one that records them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lifecycle.runner import CommandFailed, Result


class RecordingRunner:
    """The thin edge: records every argv and answers from `answers` (argv prefix -> Result), else `default`.

    Like the real runners it raises CommandFailed on a failing command unless `warn` is set.
    """

    def __init__(self, answers: Mapping[tuple[str, ...], Result] | None = None, default: Result | None = None):
        self.answers = dict(answers or {})
        self.default = default or Result(0)
        self.calls: list[list[str]] = []
        self.envs: list[Mapping[str, str] | None] = []

    def __call__(
        self, argv: Sequence[str], *, env=None, warn=False, capture=False, interactive=False, timeout=None
    ) -> Result:
        self.calls.append(list(argv))
        self.envs.append(env)
        result = self.default
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                result = answer
                break
        if not result.ok and not warn:
            raise CommandFailed(argv, result.return_code)
        return result
