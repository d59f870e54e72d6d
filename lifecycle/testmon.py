"""`invoke qa --changed`: only the site's tests that what changed since the last run can affect (pytest-testmon).

testmon runs inside the test-qa image, as the whole suite does; its data (which test ran which code, and the
fingerprints of that code) is kept between runs on a volume of this checkout's own, `<project>-testmon`, mounted
at MOUNT. The whole suite runs instead when the dependencies or the settings changed: `inputs_key` hashes the
files behind them (the locks, the settings module, the test suite's conftest) and `bash_files/qa.sh` drops the data
when the key differs from the last run's. A change that breaks an import fails as it does in the whole suite: the
tests that import the module are affected, run, and fail.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lifecycle.settings import Settings

MOUNT = "/testmon"
ENV = "QA_CHANGED"  # qa.sh runs testmon when it is set; its value is inputs_key
ALWAYS = ("tests/site/conftest.py",)  # read before testmon watches anything: a change runs the whole suite


def volume(settings: Settings) -> str:
    """The checkout's testmon volume (the compose project name carries a hash of the checkout's path)."""
    return f"{settings.project_name}-testmon"


def settings_module_file(settings: Settings) -> Path:
    module = settings.typed("SETTINGS_TEST") or settings.typed("SETTINGS_DEV")
    path = settings.code_root / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def inputs(settings: Settings) -> list[Path]:
    """The files whose change runs the whole suite: dependency locks, the settings module, the tests' conftest."""
    locks = [settings.root / name for name in (*settings.typed("REQUIREMENTS"), *settings.typed("REQUIREMENTS_TEST"))]
    return [*dict.fromkeys([*locks, settings_module_file(settings), *(settings.root / name for name in ALWAYS)])]


def inputs_key(settings: Settings) -> str:
    """sha256 over each input's path and content (a missing file counts as its absence)."""
    digest = hashlib.sha256()
    for path in inputs(settings):
        digest.update(f"{path.relative_to(settings.root)}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing\0")
    return digest.hexdigest()


def run_options(settings: Settings) -> tuple[list[str], list[str]]:
    """(the --env items, the --volume items) of the test-qa run under --changed."""
    return [f"{ENV}={inputs_key(settings)}"], [f"{volume(settings)}:{MOUNT}"]
