"""`invoke wheel`: the lifecycle library (`lifecycle/`, `lifecycle_site/`) as a wheel an adopted project pins.

Built from a copy of exactly those sources (so the checkout gets no build/ or egg-info, and nothing else can
slip in) with the hash-locked setuptools of requirements/sdist-build.txt, and with SOURCE_DATE_EPOCH fixed:
the same sources give the same bytes, so the wheel's sha256 can go into a hash-locked requirements file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lifecycle.commands import uv
from lifecycle.errors import UserError
from lifecycle.runner import Runner

SOURCES = ("pyproject.toml", "lifecycle", "lifecycle_site")
BUILD_CONSTRAINTS = Path("requirements") / "sdist-build.txt"
DIST = Path("dist")
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest date a zip (and so a wheel) can hold
NOT_SOURCES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str

    def line(self) -> str:
        return f"{self.path.name} --hash=sha256:{self.sha256}"


def build(root: Path, run: Runner, out_dir: Path | None = None, dry: bool = False) -> Wheel | None:
    """Build the wheel into out_dir (default dist/ in the checkout); None in a dry run."""
    out_dir = out_dir or root / DIST
    with tempfile.TemporaryDirectory(prefix="lifecycle-wheel-") as scratch:
        source, built = Path(scratch) / "source", Path(scratch) / "out"
        argv = uv.build_wheel(source, built, root / BUILD_CONSTRAINTS)
        if dry:
            print(f"dry run: would copy {', '.join(SOURCES)} and run: {' '.join(argv)}")
            return None
        source.mkdir()
        for name in SOURCES:
            path = root / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=NOT_SOURCES)
            else:
                shutil.copy2(path, source / name)
        run(argv, env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        wheels = sorted(built.glob("*.whl"))
        if len(wheels) != 1:
            raise UserError(f"uv build made {len(wheels)} wheels, expected one; see its output above")
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / wheels[0].name
        shutil.copyfile(wheels[0], target)
    return Wheel(target, hashlib.sha256(target.read_bytes()).hexdigest())
