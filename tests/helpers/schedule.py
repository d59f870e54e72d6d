"""How e2e is spread over xdist workers when asked to (docs/test-clock.md): groups, order, SIGTERM to the workers."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import suppress
from pathlib import Path

import pytest

# Two at a time (docs/test-clock.md): `nox -s e2e -- -n 2` runs tests/integration with pytest-xdist, so one test's
# waits (health checks, timeouts, builds) overlap another's work. A module is one unit (ModuleScheduling): its tests
# run in file order on one worker and share its module fixtures. The swarm tests (mark `swarm`) are `nox -s swarm`'s,
# never beside the others: leaving swarm mode restarts every container on a user-defined network of the engine; run
# with -n anyway, their modules are one unit (SWARM_GROUP), so two never overlap. Each worker has its own session
# fixtures; the second worker's builds of the same stages are build-cache hits.

SWARM_GROUP = "swarm"
SWARM_MODULES = ("test_swarm_deploy", "test_swarm_leave")  # the modules marked `swarm` (a unit test checks)
# The groups that take longest (their tests' seconds in a two-worker run's junit report, 2026-12-04), handed out
# first so that both workers end close together; every other group follows in file order.
LONGEST_FIRST = (
    SWARM_GROUP,
    "test_faults",
    "test_data_safety",
    "test_release",
    "test_jobs",
    "test_remote_backup",
    "test_daily_use",
)


def group_of(path: str | Path) -> str:
    """The unit of work a test file's tests are: SWARM_GROUP for a swarm module, else the module's name."""
    stem = Path(path).stem
    return SWARM_GROUP if stem in SWARM_MODULES else stem


def schedule_rank(item: pytest.Item) -> int:
    group = group_of(item.path)
    return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)


def module_scheduling(config: pytest.Config, log):
    """xdist's scheduler for e2e: each group (module_scheduling's units) whole on one worker, in collection order
    (the longest first). xdist's own `--dist loadgroup` cannot do it here: it marks a test's group by rewriting the
    test's node id, which pytest 9 no longer reads, so it spread one module's tests over both workers."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid.split("::", 1)[0])

    config.option.loadscopereorder = False  # keep group_and_order's order: the longest groups first
    return ModuleScheduling(config, log)


def is_xdist_controller(config: pytest.Config) -> bool:
    """True in the process that hands tests to xdist workers (not in a worker, nor in a run without -n)."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent` (xdist's workers, for the controller), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(command)": state, ppid, ...
        except (OSError, IndexError):
            continue
        if fields[1:2] == [str(parent)]:
            found.append(int(stat.parent.name))
    return found


def forward_sigterm_to_workers() -> None:
    """In the controller: SIGTERM goes on to every worker, which cleans up as a single run does (its fixtures'
    teardown), reports, and ends; the controller then ends too. Ctrl-C reaches the workers through the terminal.
    xdist waits EXIT_TIMEOUT seconds for a worker that was told to stop; raised so teardowns finish."""
    from xdist.workermanage import NodeManager

    NodeManager.EXIT_TIMEOUT = 300  # as nox's terminate_timeout (noxfile PYTEST_SHUTDOWN)

    def forward(signum, frame) -> None:
        print("terminated: the workers clean up as on Ctrl-C", file=sys.stderr, flush=True)
        for pid in child_pids(os.getpid()):
            with suppress(ProcessLookupError):  # ended on its own meanwhile
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)


def order_longest_first(items: list) -> None:
    """The longest groups first (each worker takes the next group in this order), file order kept."""
    items.sort(key=schedule_rank)  # stable: file order within a module, module order otherwise
