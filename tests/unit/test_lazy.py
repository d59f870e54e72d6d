"""The task front end imports only what a task runs: `invoke build` must not pay for deploy, backup or adoption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.lazy import lazy_module

ROOT = Path(__file__).resolve().parents[2]
# Executed by the build path itself, or too small to matter; everything else waits for its first use.
NOT_FOR_BUILD = ["lifecycle.adopt", "lifecycle.backup", "lifecycle.cluster", "lifecycle.deploy", "lifecycle.drill",
                 "lifecycle.release", "lifecycle.remote", "lifecycle.status", "lifecycle.pitr", "lifecycle.maintenance",
                 "lifecycle.offline", "lifecycle.tls"]  # fmt: skip
HEAVY_LIBRARIES = ["packaging", "tarfile"]  # adopt's requirement parsing, the backups' archives

PROBE = """
import json, sys
import lifecycle.cli.tasks
print(json.dumps({name: type(module).__name__ for name, module in sys.modules.items()}))
"""


def loaded_by_the_task_collection() -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_loading_the_tasks_executes_none_of_the_modules_the_build_does_not_use():
    modules = loaded_by_the_task_collection()
    executed = [name for name in NOT_FOR_BUILD if modules.get(name, "_LazyModule") != "_LazyModule"]
    assert executed == []
    assert [name for name in HEAVY_LIBRARIES if name in modules] == []


def test_a_lazy_module_loads_on_first_use_and_is_the_one_plain_imports_get():
    module = lazy_module("lifecycle.retention")
    assert callable(module.to_keep)  # the first attribute read runs the module
    import lifecycle.retention

    assert lifecycle.retention is module


def test_a_missing_module_fails_at_once():
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        lazy_module("lifecycle.no_such_module")
