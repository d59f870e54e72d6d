"""The one place that builds `uv` command lines (locking requirements, building the wheel). Nothing here runs
anything.

uv comes from the host tooling (`requirements/tools.txt`, the version `requirements/build.txt` pins for
the images). Every lock is compiled from the checkout's root (`--directory`), so the paths uv writes
into a lock's annotations are the same in every checkout.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

LOCK_COMMAND = "invoke deps.lock"  # what a lock's header tells the reader to run


def uv_binary() -> str:
    """The uv next to the running interpreter (the tooling venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.is_file() else "uv"


def compile_lock(
    root: Path,
    sources: Sequence[str],
    output: str,
    python_version: str,
    *,
    compile_command: str = LOCK_COMMAND,
    upgrade_all: bool = False,
    upgrade_package: str | None = None,
    extras: Sequence[str] = (),
    constraints: str | None = None,
) -> list[str]:
    """`uv pip compile` of dependency sources (`.in` files, requirements files, pyproject.toml) into one
    hash-locked `.txt`: the suite's own locks (lifecycle/deps.py) and an adopted project's (lifecycle/projectlock.py).

    Universal (markers instead of this host's platform) for a fixed Python version, so the host's own
    Python never changes the result; the existing lock is uv's preference, so only `--upgrade*` moves a pin.
    System certificates (`--system-certs`) so a TLS-intercepting proxy the host trusts works as for pip.
    `compile_command` is what the lock's header tells the reader to run.
    """
    return [
        uv_binary(),
        "--directory",
        str(root),
        "--system-certs",
        "--no-python-downloads",
        "pip",
        "compile",
        "--quiet",
        "--universal",
        "--python-version",
        python_version,
        "--generate-hashes",
        "--custom-compile-command",
        compile_command,
        *["--upgrade"] * upgrade_all,
        *(["--upgrade-package", upgrade_package] if upgrade_package else []),
        *[flag for extra in extras for flag in ("--extra", extra)],
        *(["--constraint", constraints] if constraints else []),
        *sources,
        "--output-file",
        output,
    ]


def build_wheel(source: Path, out_dir: Path, build_constraints: Path) -> list[str]:
    """`uv build --wheel` of the project at `source` into `out_dir`, its build backend hash-checked against
    `build_constraints` (requirements/sdist-build.txt, the images' setuptools)."""
    return [
        uv_binary(),
        "--system-certs",
        "--no-python-downloads",
        "build",
        "--wheel",
        "--quiet",
        "--require-hashes",
        "--build-constraints",
        str(build_constraints),
        "--out-dir",
        str(out_dir),
        str(source),
    ]
