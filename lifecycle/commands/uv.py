"""The one place that builds `uv` command lines (locking requirements, building the wheel). Nothing here runs
anything.

uv comes from the host tooling (`requirements/tools.txt`, the version `requirements/build.txt` pins for
the images). Every lock is compiled from the checkout's root (`--directory`), so the paths uv writes
into a lock's annotations are the same in every checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

LOCK_COMMAND = "invoke deps.lock"  # what a lock's header tells the reader to run


def uv_binary() -> str:
    """The uv next to the running interpreter (the tooling venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.is_file() else "uv"


def compile_lock(
    root: Path,
    source: str,
    output: str,
    python_version: str,
    *,
    upgrade_all: bool = False,
    upgrade_package: str | None = None,
) -> list[str]:
    """`uv pip compile` of one `.in` into its hash-locked `.txt`.

    Universal (markers instead of this host's platform) for a fixed Python version, so the host's own
    Python never changes the result; the existing lock is uv's preference, so only `--upgrade*` moves a pin.
    System certificates (`--system-certs`) so a TLS-intercepting proxy the host trusts works as for pip.
    """
    upgrade = ["--upgrade"] * upgrade_all + (["--upgrade-package", upgrade_package] if upgrade_package else [])
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
        LOCK_COMMAND,
        *upgrade,
        source,
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


def compile_project_lock(
    root: Path,
    sources: list[str],
    output: str,
    python_version: str,
    *,
    extras: list[str] | tuple[str, ...] = (),
    constraints: str | None = None,
) -> list[str]:
    """`uv pip compile` of an adopted project's dependency sources (requirements files, pyproject.toml) into the
    hash-locked lock the images install (lifecycle/projectlock.py): universal for the images' Python, the existing
    lock as preference, so an unchanged source set resolves to the same pins."""
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
        "invoke build",
        *[flag for extra in extras for flag in ("--extra", extra)],
        *(["--constraint", constraints] if constraints else []),
        *sources,
        "--output-file",
        output,
    ]
