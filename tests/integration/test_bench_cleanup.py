"""`nox -s bench` stopped by SIGTERM (as timeout(1) and CI stop a job) leaves nothing of its own behind.

The cheapest section that makes something is `backup`: it starts a database (container, network, volume) under a
compose project of its own. The bench runs in a copy of the checkout (so its `bench-<hash>` names are this test's
alone), the signal goes to the nox process only (a CI runner's `kill`; the harder case, since the commands it runs
get nothing), mid-section, while `compose up --wait` waits for the database.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from bench.sections import SECTIONS
from lifecycle.settings import default_project_name
from tests.helpers.checkout import copy_checkout
from tests.helpers.engine import images_built_by, wait_for
from tests.helpers.tools import describe, start_tool

pytestmark = pytest.mark.integration
SECTION = "backup"


def leftovers(engine, name: str) -> dict[str, list[str]]:
    """Everything on the engine named after the bench's project (`bench-<hash>`, `bench-<hash>-backup`, ...)."""
    found = {
        "containers": engine.docker("ps", "--all", "--format", "{{.Names}}", "--filter", f"name={name}").stdout,
        "volumes": engine.docker("volume", "ls", "--quiet", "--filter", f"name={name}").stdout,
        "networks": engine.docker("network", "ls", "--format", "{{.Name}}", "--filter", f"name={name}").stdout,
    }
    left = {kind: text.split() for kind, text in found.items() if text.split()}
    images = images_built_by({name})
    return {**left, **({"images": images} if images else {})}


def remove_leftovers(engine, name: str) -> None:
    left = leftovers(engine, name)
    for kind, argv in (("containers", ["rm", "--force", "--volumes"]), ("volumes", ["volume", "rm", "--force"]),
                       ("networks", ["network", "rm"]), ("images", ["image", "rm", "--force"])):  # fmt: skip
        if left.get(kind):
            engine.docker(*argv, *left[kind], check=False)


def test_sigterm_mid_section_leaves_nothing_of_the_bench_behind(engine, tmp_path):
    root = copy_checkout(tmp_path / "checkout")
    name = default_project_name("bench", root)
    assert not leftovers(engine, name)
    skips = [arg for section in SECTIONS if section.name != SECTION for arg in ("--skip", section.name)]
    bench = start_tool("nox", "-s", "bench", "--", "--runs", "1", *skips, cwd=root)
    try:

        def database_started() -> bool:
            if bench.poll() is not None:
                raise AssertionError(f"the bench ended before its database started:\n{bench.stdout.read()[-4000:]}")
            return bool(leftovers(engine, name).get("containers"))

        wait_for(database_started, timeout=300, what=f"the {SECTION} section's database container", interval=0.5)
        os.kill(bench.pid, signal.SIGTERM)
        output, _ = bench.communicate(timeout=240)
        done = subprocess.CompletedProcess(bench.args, bench.returncode, output, "")
        assert bench.returncode != 0, describe(done)
        assert "terminated: cleaning up" in output, describe(done)
        assert leftovers(engine, name) == {}, describe(done)
        assert not (root / "updated_zip" / "bench").exists()
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait(timeout=30)
        remove_leftovers(engine, name)
