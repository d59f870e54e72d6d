"""How e2e is spread over two workers (tests/integration/conftest.py), without an engine: each module one xdist group,
the swarm modules apart, the longest first, SIGTERM's way to the workers."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import schedule as e2e

CONFTEST = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"


@dataclass
class Item:
    """What the hook reads of a pytest item: its path."""

    path: Path
    marks: list = field(default_factory=list)


def items(*names: str) -> list[Item]:
    return [Item(Path("tests/integration") / name) for name in names]


class Config:
    """What xdist's scheduler reads of pytest's config, as `-n 2` sets it."""

    def __init__(self) -> None:
        self.option = SimpleNamespace(tx=["2*popen"], loadscopereorder=True)

    def getvalue(self, name: str):
        return getattr(self.option, name)


@pytest.mark.parametrize(
    ("nodeid", "unit"),
    [
        ("tests/integration/test_lifecycle.py::test_up", "test_lifecycle"),
        ("tests/integration/test_remote_backup.py::test_fails[sftp-wrong-password]", "test_remote_backup"),
        ("tests/integration/test_images.py::TestDev::test_user", "test_images"),
        ("tests/integration/test_swarm_deploy.py::test_deploy", "swarm"),
        ("tests/integration/test_swarm_leave.py::test_leave", "swarm"),
    ],
)
def test_a_modules_tests_are_one_unit_of_work_and_the_swarm_modules_share_one(nodeid, unit):
    scheduler = e2e.module_scheduling(Config(), log=None)
    assert scheduler._split_scope(nodeid) == unit


def test_the_units_are_handed_out_in_collection_order():
    config = Config()
    e2e.module_scheduling(config, log=None)
    assert config.option.loadscopereorder is False, "xdist would otherwise put the units with most tests first"


def test_the_longest_modules_come_first_and_a_modules_own_order_is_kept():
    found = items("test_adopt_image.py", "test_release.py", "test_bad_input.py", "test_release.py")
    found[1].marks.append("first")
    e2e.order_longest_first(found)
    assert [item.path.stem for item in found] == ["test_release", "test_release", "test_adopt_image", "test_bad_input"]
    assert found[0].marks == ["first"], "file order within a module is kept (a stable sort)"


def test_the_swarm_modules_are_marked_and_run_by_their_own_session_not_by_e2e():
    marked = {
        path.stem
        for path in CONFTEST.parent.glob("test_*.py")
        if "pytest.mark.swarm" in path.read_text(encoding="utf-8")
    }
    assert marked == set(e2e.SWARM_MODULES), "SWARM_MODULES names every module marked swarm"
    noxfile = (CONFTEST.parents[2] / "lifecycle" / "cli" / "sessions.py").read_text(encoding="utf-8")
    assert 'E2E_TESTS = ("tests/integration", "-m", "not swarm", "-n", "2", "--ignore", E2E_ALONE)' in noxfile
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
