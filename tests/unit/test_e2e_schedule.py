"""How e2e is spread over two workers (tests/integration/conftest.py), without an engine: each module one xdist group,
the swarm modules apart, the longest first, SIGTERM's way to the workers."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import schedule as e2e

CONFTEST = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"


@dataclass
class Item:
    """What the hook reads of a pytest item: its path and its marks."""

    path: Path
    marks: list = field(default_factory=list)

    def iter_markers(self, name: str):
        return [mark for mark in self.marks if mark.name == name]

    def add_marker(self, mark) -> None:
        self.marks.append(mark.mark)


def items(*names: str) -> list[Item]:
    return [Item(Path("tests/integration") / name) for name in names]


def test_every_module_is_a_group_and_the_swarm_modules_share_one():
    found = items("test_lifecycle.py", "test_lifecycle.py", "test_swarm_deploy.py", "test_swarm_leave.py")
    for item in found[2:]:
        item.add_marker(pytest.mark.swarm)
    e2e.group_and_order(found)
    assert [e2e.xdist_group_of(item) for item in found] == ["swarm", "swarm", "test_lifecycle", "test_lifecycle"]


def test_the_longest_modules_come_first_and_a_modules_own_order_is_kept():
    found = items("test_adopt_image.py", "test_release.py", "test_bad_input.py", "test_release.py")
    found[1].marks.append(pytest.mark.slow.mark)
    e2e.group_and_order(found)
    assert [item.path.stem for item in found] == ["test_release", "test_release", "test_adopt_image", "test_bad_input"]
    assert found[0].iter_markers("slow"), "file order within a module is kept (a stable sort)"


def test_the_swarm_modules_are_marked_and_run_by_their_own_session_not_by_e2e():
    for name in ("test_swarm_deploy.py", "test_swarm_leave.py"):
        text = (CONFTEST.parent / name).read_text(encoding="utf-8")
        assert "pytestmark = [pytest.mark.integration, pytest.mark.swarm]" in text, name
    noxfile = (CONFTEST.parents[2] / "lifecycle" / "cli" / "sessions.py").read_text(encoding="utf-8")
    assert 'E2E_TESTS = ("tests/integration", "-m", "not swarm")' in noxfile
    assert 'SWARM_TESTS = ("tests/integration", "-m", "swarm")' in noxfile
    ci_run = (CONFTEST.parents[2] / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv/bin/nox -s swarm || status=$?" in ci_run, "CI still runs the swarm tests"


def test_child_pids_finds_the_processes_this_one_started():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in e2e.child_pids(os.getpid())
        assert child.pid not in e2e.child_pids(child.pid)
    finally:
        child.kill()
        child.wait()
