"""What the test suites share, imported as `from tests.helpers.<module> import ...` (pytest's `pythonpath`
setting in pyproject.toml puts the checkout on sys.path, so no test edits sys.path or imports a conftest):

- engine: the real Docker engine: unique names, `docker`, containers and volumes always removed, `wait_for`
  (the one deadline loop of the tests), free ports, SIGTERM clean-up.
- tools: running `invoke`/`nox` as a user does (run_tool, start_tool) and reading what they said.
- checkout: an isolated checkout (its own images, compose project and ports) and copies of the checkout.
- cluster: the on-machine cluster under test (tests/cluster).
- recording: a recording runner for unit tests (no engine).
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # the repository's root
