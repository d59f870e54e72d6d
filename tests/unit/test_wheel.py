"""invoke wheel: the lifecycle library as a reproducible wheel, with exactly its own modules, importable alone.

Builds for real (uv with the hash-locked setuptools; the first run on a machine fetches it from the index)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lifecycle import wheel
from lifecycle.commands import uv
from lifecycle.runner import SubprocessRunner

CHECKOUT = Path(__file__).resolve().parents[2]


def test_build_argv():
    assert uv.build_wheel(Path("/s"), Path("/o"), Path("/r/sdist-build.txt"))[1:] == [
        "--system-certs", "--no-python-downloads", "build", "--wheel", "--quiet", "--require-hashes",
        "--build-constraints", "/r/sdist-build.txt", "--out-dir", "/o", "/s",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> wheel.Wheel:
    out = tmp_path_factory.mktemp("dist")
    made = wheel.build(CHECKOUT, SubprocessRunner(echo=False), out_dir=out)
    assert made is not None
    return made


def library_files() -> set[str]:
    return {
        str(p.relative_to(CHECKOUT))
        for folder in ("lifecycle", "lifecycle_site")
        for p in (CHECKOUT / folder).rglob("*.py")
    }


def test_the_wheel_holds_the_library_and_nothing_else(built):
    with zipfile.ZipFile(built.path) as archive:
        names = archive.namelist()
    code = {name for name in names if ".dist-info/" not in name}
    assert code == library_files()
    assert not [name for name in code if name.startswith(("bench/", "tests/"))]  # consumers of the library stay out
    assert built.path.name == "lifecycle_suite-0.1.0-py3-none-any.whl"


def test_its_metadata_names_its_one_dependency(built):
    with zipfile.ZipFile(built.path) as archive:
        metadata = archive.read("lifecycle_suite-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.11" in metadata
    assert [line for line in metadata.splitlines() if line.startswith("Requires-Dist")] == ["Requires-Dist: packaging"]


def test_the_same_sources_give_the_same_bytes(built, tmp_path):
    again = wheel.build(CHECKOUT, SubprocessRunner(echo=False), out_dir=tmp_path)
    assert again is not None and again.sha256 == built.sha256
    assert built.line() == f"lifecycle_suite-0.1.0-py3-none-any.whl --hash=sha256:{built.sha256}"


def test_the_library_imports_from_the_wheel_alone(built, tmp_path):
    imports = "import lifecycle.adopt, lifecycle.detect, lifecycle_site.layer; print(lifecycle.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", imports],
        cwd=tmp_path, env={"PYTHONPATH": str(built.path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{built.path}/lifecycle/__init__.py"


def test_the_checkout_gets_no_build_leftovers(built):
    assert not (CHECKOUT / "build").exists()
    assert not list(CHECKOUT.glob("*.egg-info"))


def test_a_dry_run_builds_nothing(tmp_path, capsys):
    assert wheel.build(CHECKOUT, SubprocessRunner(echo=False), out_dir=tmp_path, dry=True) is None
    assert capsys.readouterr().out.startswith("dry run: would copy pyproject.toml, lifecycle, lifecycle_site and run:")
    assert list(tmp_path.iterdir()) == []
