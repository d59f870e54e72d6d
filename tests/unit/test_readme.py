"""README.md: the Quick start's two commands (the second is what `.ci/run` runs); every task, session, setting."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lifecycle.settings import TABLE

CHECKOUT = Path(__file__).resolve().parents[2]
README = CHECKOUT / "README.md"

pytestmark = pytest.mark.skipif(not README.is_file(), reason="no README.md in this checkout yet")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    """The non-empty lines of the first fenced code block under `## Quick start`."""
    section = readme().split("\n## Quick start", 1)[1]
    block = re.search(r"^```[^\n]*\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert block, "no code block under ## Quick start"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_holds_exactly_two_commands():
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert all(not line.lstrip().startswith(("#", "$")) for line in commands)


def test_ci_runs_the_second_quick_start_command():
    """Run `.ci/run`'s own extraction function (copied out of the script) on this README."""
    script = (CHECKOUT / ".ci" / "run").read_text(encoding="utf-8")
    function = re.search(r"^readme_test_command\(\) \{\n.*?^\}\n", script, flags=re.MULTILINE | re.DOTALL)
    assert function, ".ci/run has no readme_test_command function"
    done = subprocess.run(
        ["bash", "-c", f"{function.group(0)}\nreadme_test_command"],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == quick_start_commands()[1]


def listed(*argv: str, pattern: str) -> list[str]:
    done = subprocess.run(
        [str(CHECKOUT / ".venv" / "bin" / argv[0]), *argv[1:]],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = re.findall(pattern, done.stdout, flags=re.MULTILINE)
    assert names, done.stdout
    return names


def test_every_task_is_in_the_readme():
    tasks = listed("invoke", "--list", pattern=r"^  (\S+)(?: \([^)]*\))?\s{2,}\S")
    assert [name for name in tasks if f"invoke {name}" not in readme()] == []


def test_every_nox_session_is_in_the_readme():
    sessions = listed("nox", "--list", pattern=r"^[*-] (\S+) ")
    assert [name for name in sessions if f"nox -s {name}" not in readme()] == []


def test_every_setting_is_in_the_readme():
    assert [s.name for s in TABLE if f"`{s.name}`" not in readme()] == []
