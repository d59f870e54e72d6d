"""tests/adopt (`nox -s adopt`): SIGTERM (nox passing on a timeout, a cancelled CI job) runs the fixtures' clean-up
as Ctrl-C does, so each project's stack, registry, images and folder are removed."""

from __future__ import annotations

from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]  # the suite's checkout (on sys.path through pytest's pythonpath)


def pytest_configure(config: pytest.Config) -> None:
    from lifecycle.runner import interrupt_on_sigterm

    interrupt_on_sigterm()
