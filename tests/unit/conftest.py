"""Shared helpers for the host-side unit tests: the checkout on sys.path, a recording runner, tmp settings."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))

from lifecycle.runner import CommandFailed, Result  # noqa: E402 - needs the checkout on sys.path first
from lifecycle.settings import Settings, load_settings  # noqa: E402


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


@pytest.fixture
def make_settings(tmp_path: Path):
    """`make_settings(**environ)`: Settings for a tmp checkout, with only the given environment."""

    def make(root: Path | None = None, **environ: str) -> Settings:
        return load_settings(root=root or tmp_path, environ=environ)

    return make
