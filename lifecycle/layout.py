"""Where things are: the project the suite works on (ROOT), and the suite's own files in it.

Two layouts, one code path. In the suite's own checkout the library's sources sit beside tasks.py, and the
checkout is the project (django_site is simply the project it adopts). In a project that adopted the suite
(`invoke adopt`), the library is the wheel its tools lock pins, installed in its .venv; the project keeps the
shims (tasks.py, noxfile.py), scripts/bootstrap, docker/ and the rest of template/, and the suite's wheelhouse
and tools lock in SUITE_DIR. Standard library only: scripts/bootstrap imports this before any virtualenv exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from lifecycle import staging

PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # a checkout of the suite, or site-packages (or a wheel)
ROOT_VARIABLE = "LIFECYCLE_ROOT"  # names the project's root outright (tests, scripts run from elsewhere)
# What marks a project's root, nearest first from the working directory up: the entry points and the answers file
# that `invoke adopt` writes.
ROOT_MARKERS = ("tasks.py", "noxfile.py", ".copier-answers.yml")
SUITE_TOOLS = Path("requirements") / "tools.txt"  # the suite's own hash-locked host tooling
ADOPTED_LOCK = Path("requirements") / "adopted.txt"  # the part of it an adopted project needs (invoke adopt)
SUITE_DIR = Path(".lifecycle-suite")  # in an adopted project, committed: the wheelhouse and the tools lock
WHEELHOUSE = SUITE_DIR / "wheels"  # the suite's wheel (invoke adopt builds it from the suite's checkout)
ADOPTED_TOOLS = SUITE_DIR / "tools.txt"  # ADOPTED_LOCK plus the suite's wheel, by path and sha256
WHEEL_NAME = "lifecycle-suite"  # the distribution's name (pyproject.toml)
# The suite's own locks the images build from, which template/ writes into an adopted project's requirements/: never
# the project's dependencies (lifecycle.detect skips them where .copier-answers.yml says the suite was adopted).
# runtime.txt and test.txt are django_site's, there until the images install the project's own REQUIREMENTS.
IMAGE_LOCKS = tuple(f"requirements/{name}.txt" for name in ("build", "sdist-build", "debug", "sbom", "runtime", "test"))


def is_suite_checkout(folder: Path) -> bool:
    """A checkout of the suite itself: the library's sources sit beside its entry points."""
    return (folder / "lifecycle" / "__init__.py").is_file() and (folder / "tasks.py").is_file()


def find_root(
    cwd: Path | None = None, environ: Mapping[str, str] | None = None, package_parent: Path = PACKAGE_PARENT
) -> Path:
    """The project the suite works on. Imported from the suite's own checkout: that checkout. Installed as the wheel
    an adopted project pins: the nearest folder from the working directory up that holds tasks.py, noxfile.py or
    .copier-answers.yml (else the working directory itself). LIFECYCLE_ROOT, when set, wins."""
    environ = os.environ if environ is None else environ
    if environ.get(ROOT_VARIABLE):
        return Path(environ[ROOT_VARIABLE]).expanduser().resolve()
    if is_suite_checkout(package_parent):
        return package_parent
    here = (cwd or Path.cwd()).resolve()
    return next((f for f in (here, *here.parents) if any((f / m).is_file() for m in ROOT_MARKERS)), here)


def tools_lock(root: Path) -> Path:
    """The hash-locked requirements of the host tooling (.venv, the nox sessions) in this layout."""
    return root / (SUITE_TOOLS if is_suite_checkout(root) else ADOPTED_TOOLS)


# The suite's code the app's images carry (docker/Dockerfile's suite-code stage): lifecycle_site/ and
# lifecycle/unpack_zip.py. In the suite's checkout they are in the build context already (SUITE_CODE=.); in an adopted
# project `invoke build` copies them from the installed wheel into SUITE_CODE_DIR, beside the other inputs it stages
# for the build (.lifecycle/build/, which .dockerignore lets through), so the project's tree holds no copy of the
# library.
SUITE_CODE_DIR = Path(".lifecycle") / "build" / "suite"


def suite_code(root: Path) -> str:
    """SUITE_CODE, the build argument: where the suite's code is in the build context (the root)."""
    return "." if is_suite_checkout(root) else str(SUITE_CODE_DIR)


def stage_suite_code(root: Path) -> list[str]:
    """Copy the suite's code the images carry from the imported package (a folder or the wheel itself) into an
    adopted project's SUITE_CODE_DIR; the files written (none in the suite's checkout, or when all are current)."""
    if is_suite_checkout(root):
        return []
    site = resources.files("lifecycle_site")
    wanted = {f"lifecycle_site/{f.name}": f for f in site.iterdir() if f.name.endswith(".py")}
    wanted["lifecycle/unpack_zip.py"] = resources.files("lifecycle").joinpath("unpack_zip.py")
    written = staging.mirror({relative: source.read_bytes() for relative, source in wanted.items()},
                             root / SUITE_CODE_DIR, "**/*.py")  # fmt: skip
    return [str(SUITE_CODE_DIR / relative) for relative in written]
