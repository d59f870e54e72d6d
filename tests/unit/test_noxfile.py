"""The noxfile's default set: `nox` runs lint, unit, qa and e2e (the README's test command); the opt-in sessions
declare themselves with `@nox.session(default=False)` rather than in a list of names."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import CHECKOUT


def listed() -> dict[str, bool]:
    """`nox --list`: session name -> selected by default."""
    done = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--noxfile", str(CHECKOUT / "noxfile.py")],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    marks = [line.split(" -> ")[0].split() for line in done.stdout.splitlines() if " -> " in line]
    return {name: mark == "*" for mark, name in marks}


def test_nox_runs_the_readme_test_command_by_default_and_lists_the_opt_in_sessions():
    sessions = listed()
    assert [name for name, selected in sessions.items() if selected] == ["lint", "unit", "qa", "e2e"]
    opt_in = [name for name, selected in sessions.items() if not selected]
    assert opt_in == ["swarm", "cluster", "adopt", "bench", "audit"]


def test_only_an_adopted_project_names_its_default_set_qa():
    assert 'nox.options.sessions = ["qa"]' in (CHECKOUT / "lifecycle" / "cli" / "sessions.py").read_text()
