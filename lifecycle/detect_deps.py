"""A Django repository's dependency sources, read from its files: requirements*.txt with their -r includes,
requirements/*.txt, pyproject's [project.dependencies]; which are for development or tests only. Pure functions
over a folder (lifecycle/detect.py puts them together).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from lifecycle.errors import UserError
from lifecycle.layout import IMAGE_LOCKS

# Requirement files by name: the ones for development and tests, not for running the site.
DEV_REQUIREMENT_WORDS = (
    *("dev", "test", "local", "ci", "lint", "docs", "doc", "tox"),
    *("tools", "debug", "build", "audit", "sbom", "adopted"),  # what this repository's own locks are called
)
TEST_REQUIREMENT_WORDS = ("test", "ci")


INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)[\s=]+(\S+)")


REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def requirement_files(root: Path) -> list[Path]:
    """The project's requirement files; in a project that adopted the suite, not the suite's own locks."""
    files = sorted(root.glob("requirements*.txt")) + sorted((root / "requirements").glob("*.txt"))
    suite = {root / name for name in IMAGE_LOCKS} if (root / ".copier-answers.yml").is_file() else set()
    return [f for f in files if f.is_file() and f not in suite]


def includes(path: Path) -> list[Path]:
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = INCLUDE.match(line)
        if match:
            found.append((path.parent / match.group(1)).resolve())
    return found


def requirement_lines(path: Path, seen: set[Path] | None = None) -> list[str]:
    """Every requirement line of a file and of the files it includes, comments and options dropped."""
    seen = set() if seen is None else seen
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip().removesuffix("\\").strip()  # hash-locked lines end in a backslash
        if INCLUDE.match(line):
            lines += requirement_lines((path.parent / INCLUDE.match(line).group(1)).resolve(), seen)
        elif line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def requirement_name(line: str) -> str:
    match = REQUIREMENT_NAME.match(line)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def is_dev_requirements(path: Path) -> bool:
    words = re.split(r"[-_./]", path.stem.lower())
    return any(word in DEV_REQUIREMENT_WORDS for word in words)


def dependency_sources(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(runtime sources, test sources, every requirement line of the runtime ones): the files nobody includes,
    split by name; pyproject.toml's [project.dependencies] (and its test/dev extras) when it has them."""
    files = requirement_files(root)
    runtime_files = [f for f in files if not is_dev_requirements(f)]
    dev_files = [f for f in files if is_dev_requirements(f)]
    # A file another one of its kind includes is a part, not a source (a dev file may include requirements.txt).
    runtime = [f for f in runtime_files if f.resolve() not in {t for o in runtime_files for t in includes(o)}]
    dev = [f for f in dev_files if f.resolve() not in {t for o in dev_files for t in includes(o)}]
    test = [f for f in dev if any(w in re.split(r"[-_./]", f.stem.lower()) for w in TEST_REQUIREMENT_WORDS)] or dev
    lines = [line for f in runtime for line in requirement_lines(f.resolve())]
    names = [str(f.relative_to(root)) for f in runtime], [str(f.relative_to(root)) for f in test[:1]]
    project = read_pyproject(root).get("project", {})
    if project.get("dependencies"):
        names[0].append("pyproject.toml")
        lines += list(project["dependencies"])
    extras = project.get("optional-dependencies", {})
    for extra in ("test", "tests", "dev"):
        if extra in extras and not names[1]:
            names[1].append(f"pyproject.toml[{extra}]")
    return names[0], names[1], lines


def read_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path} is not valid TOML ({error}); fix it first") from None
