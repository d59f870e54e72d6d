"""lifecycle/projectlock.py: which lock is copied and which compiled (with what added), the compile argv, the cache by
input digest, the staged tests; docker/check_libs.py's refusal line, and how a failed build says it."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from lifecycle import projectlock
from lifecycle.build import build_failure
from lifecycle.commands import uv
from lifecycle.errors import CommandFailed, UserError
from lifecycle.runner import Result
from lifecycle.settings import ROOT

LOCKED = "django==5.2.1 \\\n    --hash=sha256:aa\nmysqlclient==2.2 --hash=sha256:bb\ngunicorn==23 --hash=sha256:cc\n"
LOCKED += "whitenoise==6 \\\n    --hash=sha256:dd\ndjango-prometheus==2.5 --hash=sha256:d0\n"


def write(root: Path, relative: str, text: str) -> None:
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_text(text)


@pytest.mark.parametrize(
    ("text", "locked"),
    [
        pytest.param(LOCKED, True, id="every entry pinned with a hash"),
        pytest.param("django==5.2\n", False, id="pinned, no hash"),
        pytest.param("django>=5 --hash=sha256:aa\n", False, id="a range"),
        pytest.param("-r base.txt\n", False, id="an include"),
        pytest.param("# only a comment\n", False, id="nothing"),
        pytest.param((ROOT / "requirements/runtime.txt").read_text(), True, id="django_site's runtime lock"),
    ],
)
def test_is_hash_locked(text, locked):
    assert projectlock.is_hash_locked(text) is locked


@pytest.mark.parametrize(
    ("files", "requirements", "runtime", "test"),
    [
        pytest.param(
            {"req.txt": LOCKED, "test.txt": LOCKED + "pytest==8 --hash=sha256:ee\npytest-django==4 --hash=sha256:ff\n"
             "coverage==7 --hash=sha256:11\n"},
            ("req.txt", "test.txt"), ("copy", ()), ("copy", ()), id="django_site: both already locked, copied",
        ),
        pytest.param(
            {"requirements.txt": "Django>=5.2\nPyYAML\n"}, ("requirements.txt", ""),
            ("compile", ("mysqlclient", "gunicorn", "whitenoise", "django-prometheus")),
            ("compile", ("mysqlclient", "gunicorn", "whitenoise", "django-prometheus", "coverage", "pytest",
                         "pytest-django")),
            id="plain file, no driver, no server: added",
        ),
        pytest.param(
            {"requirements.txt": "-r requirements/base.txt\n", "requirements/base.txt": "Django\nPyMySQL\ngunicorn\n"
             "whitenoise\ndjango-prometheus\n",
             "requirements-dev.txt": "-r requirements.txt\npytest-django\ncoverage\n"},
            ("requirements.txt", "requirements-dev.txt"), ("compile", ()), ("compile", ("pytest",)),
            id="includes followed: PyMySQL is a driver",
        ),
        pytest.param(
            {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["django", "mysqlclient"]\n'
             '[project.optional-dependencies]\ntest = ["pytest-django", "coverage", "pytest"]\n'},
            ("pyproject.toml", "pyproject.toml[test]"), ("compile", ("gunicorn", "whitenoise", "django-prometheus")),
            ("compile", ("gunicorn", "whitenoise", "django-prometheus")),
            id="pyproject dependencies and its test extra",
        ),
        pytest.param(
            {"req.txt": LOCKED.replace("mysqlclient==2.2 --hash=sha256:bb\n", ""), "t.txt": LOCKED},
            ("req.txt", "t.txt"), ("compile", ("mysqlclient",)), ("compile", ("mysqlclient", "coverage", "pytest",
            "pytest-django")), id="a lock without a driver is compiled to add it",
        ),
    ],
)  # fmt: skip
def test_plan_locks(tmp_path, files, requirements, runtime, test):
    for relative, text in files.items():
        write(tmp_path, relative, text)
    plans = projectlock.plan_locks(tmp_path, [requirements[0]], [requirements[1]] if requirements[1] else [], "pytest")
    assert [("copy" if plan.copy_from else "compile", plan.added) for plan in plans] == [runtime, test]
    if test[0] == "compile":
        assert plans[1].constraints == ".lifecycle/build/locks/runtime.txt"


def test_the_django_runner_needs_only_coverage(tmp_path):
    write(tmp_path, "requirements.txt", "django\nmysqlclient\ngunicorn\nwhitenoise\ndjango-prometheus\n")
    plans = projectlock.plan_locks(tmp_path, ["requirements.txt"], [], "django")
    assert plans[1].added == ("coverage",)


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        pytest.param([], "REQUIREMENTS is empty; list the project's dependency files", id="none"),
        pytest.param(["nope.txt"], "nope.txt is missing; create it or fix requirements", id="missing"),
    ],
)
def test_bad_sources_are_one_line(tmp_path, requirements, message):
    with pytest.raises(UserError, match=message):
        for plan in projectlock.plan_locks(tmp_path, requirements, [], "pytest"):
            projectlock.inputs_digest(tmp_path, plan.sources, plan.added, "3.12")


def test_compile_argv_is_universal_hash_locked_for_the_images_python():
    argv = uv.compile_lock(
        Path("/co"), ["pyproject.toml", "x.in"], "out.txt", "3.13",
        compile_command=projectlock.BUILD_COMMAND, extras=["test"], constraints="runtime.txt",
    )  # fmt: skip
    assert argv[1:] == [
        "--directory", "/co", "--system-certs", "--no-python-downloads", "pip", "compile", "--quiet", "--universal",
        "--python-version", "3.13", "--generate-hashes", "--custom-compile-command", "invoke build",
        "--extra", "test", "--constraint", "runtime.txt", "pyproject.toml", "x.in", "--output-file", "out.txt",
    ]  # fmt: skip


class FakeUv:
    """Stands in for `uv pip compile`: writes a lock (uv's header, one pin) where --output-file says."""

    def __init__(self, root: Path, ok: bool = True):
        self.root, self.ok, self.calls = root, ok, []

    def __call__(self, argv, **kwargs):
        self.calls.append(argv)
        if not self.ok:
            return Result(
                1, "", "  \u00d7 No solution found when resolving dependencies:\n  ╰─▶ nosuchpkg was not found\n"
            )
        output = self.root / argv[argv.index("--output-file") + 1]
        output.write_text("# This file was autogenerated by uv via the following command:\n#    invoke build\nx==1\n")
        return Result(0)


def test_a_compiled_lock_is_cached_by_its_inputs_and_recompiled_when_one_changes(tmp_path):
    write(tmp_path, "requirements.txt", "django\n")
    values = {
        "REQUIREMENTS": "requirements.txt",
        "REQUIREMENTS_TEST": "",
        "TEST_RUNNER": "django",
        "PY_VERSION": "3.12",
    }
    said: list[str] = []
    uv_run = FakeUv(tmp_path)
    paths = projectlock.ensure_locks(uv_run, tmp_path, values, say=said.append)
    assert [path.relative_to(tmp_path) for path in paths] == [projectlock.LOCK_DIR / "runtime.txt",
                                                               projectlock.LOCK_DIR / "test.txt"]  # fmt: skip
    assert len(uv_run.calls) == 4  # each lock: the project's own resolution, then with django-prometheus in its pins
    assert said[0] == (
        "lock: compiling .lifecycle/build/locks/runtime.txt from requirements.txt "
        "(+ mysqlclient, gunicorn, whitenoise, django-prometheus)"
    )
    second = uv_run.calls[1]
    assert second[second.index("--constraint") + 1] == ".lifecycle/build/locks/runtime.pins.txt"
    assert (tmp_path / projectlock.LOCK_DIR / "runtime.pins.txt").read_text() == "x==1\n"  # the first one's pins
    lock = paths[0].read_text().splitlines()
    assert lock[2].startswith(projectlock.STAMP) and lock[3] == "x==1"  # the digest after uv's header
    assert (tmp_path / projectlock.LOCK_DIR / "runtime.added.in").read_text() == (
        "mysqlclient\ngunicorn\nwhitenoise\ndjango-prometheus\n"
    )
    projectlock.ensure_locks(uv_run, tmp_path, values, say=said.append)
    assert len(uv_run.calls) == 4  # unchanged inputs: nothing compiled, no index asked
    projectlock.ensure_locks(uv_run, tmp_path, {**values, "PY_VERSION": "3.13"}, say=said.append)
    assert len(uv_run.calls) == 8  # the images' Python is an input
    write(tmp_path, "requirements.txt", "django\nPyYAML\n")
    projectlock.ensure_locks(uv_run, tmp_path, {**values, "PY_VERSION": "3.13"}, say=said.append)
    assert len(uv_run.calls) == 12


def test_a_lock_that_does_not_resolve_is_one_line_with_uvs_reason(tmp_path):
    write(tmp_path, "requirements.txt", "nosuchpkg\n")
    values = {
        "REQUIREMENTS": "requirements.txt",
        "REQUIREMENTS_TEST": "",
        "TEST_RUNNER": "django",
        "PY_VERSION": "3.12",
    }
    with pytest.raises(UserError) as error:
        projectlock.ensure_locks(FakeUv(tmp_path, ok=False), tmp_path, values, say=lambda line: None)
    assert str(error.value) == (
        "the runtime requirements do not resolve: nosuchpkg was not found; fix requirements.txt"
    )


def test_a_copied_lock_follows_its_source(tmp_path):
    write(tmp_path, "req.txt", LOCKED)
    write(
        tmp_path,
        "test.txt",
        LOCKED + "pytest==8 --hash=sha256:e\npytest-django==4 --hash=sha256:f\ncoverage==7 --hash=sha256:1\n",
    )
    values = {"REQUIREMENTS": "req.txt", "REQUIREMENTS_TEST": "test.txt", "TEST_RUNNER": "pytest", "PY_VERSION": "3.12"}

    def never(argv, **kwargs):
        raise AssertionError(argv)

    runtime, _ = projectlock.ensure_locks(never, tmp_path, values)
    assert runtime.read_text() == LOCKED
    write(tmp_path, "req.txt", LOCKED + "# a new pin\n")
    projectlock.ensure_locks(never, tmp_path, values)
    assert runtime.read_text().endswith("# a new pin\n")


def test_tests_are_staged_from_the_project_folder_and_a_missing_one_refused(tmp_path):
    write(tmp_path, "src/tests/test_a.py", "def test(): pass\n")
    write(tmp_path, "src/tests/__pycache__/x.pyc", "")
    write(tmp_path, "src/pytest.ini", "[pytest]\n")
    write(tmp_path, ".lifecycle/build/tests/stale.py", "")
    assert projectlock.stage_tests(tmp_path, tmp_path / "src", ["tests", "pytest.ini"]) == ["tests", "pytest.ini"]
    staged = tmp_path / projectlock.TESTS_DIR
    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()) == [
        "pytest.ini",
        "tests/test_a.py",
    ]
    with pytest.raises(UserError, match=r"TESTS path 'nope' is not in .*src; fix tests in \[tool.lifecycle\]"):
        projectlock.stage_tests(tmp_path, tmp_path / "src", ["nope"])


# --------------------------------------------------------------------------------------- docker/check_libs.py
def load_check_libs():
    spec = importlib.util.spec_from_file_location("check_libs", ROOT / "docker" / "check_libs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_venv(root: Path) -> Path:
    site = root / "venv/lib/python3.12/site-packages"
    write(site, "MySQLdb/_mysql.cpython-312-x86_64-linux-gnu.so", "")
    write(site, "mysqlclient-2.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: mysqlclient\nVersion: 2.2\n")
    write(site, "mysqlclient-2.2.dist-info/RECORD", "MySQLdb/_mysql.cpython-312-x86_64-linux-gnu.so,sha256=x,1\n")
    write(site, "yaml/_yaml.cpython-312-x86_64-linux-gnu.so", "")
    return root / "venv"


def test_check_libs_names_the_library_the_distribution_and_the_setting(tmp_path, monkeypatch):
    check_libs = load_check_libs()
    ldd = {
        "_mysql": "\tlinux-vdso.so.1 (0x0)\n\tlibmariadb.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n",
        "_yaml": "\tlibc.so.6 => /lib/libc.so.6 (0x1)\n\tlibfoo.so.9 => not found\n",
    }

    def fake_run(argv, **kwargs):
        stdout = next(text for name, text in ldd.items() if name in argv[1])
        return subprocess.CompletedProcess(argv, 0, stdout, "")

    monkeypatch.setattr(check_libs.subprocess, "run", fake_run)
    assert check_libs.problems(fake_venv(tmp_path)) == [
        "libmariadb.so.3 (needed by lib/python3.12/site-packages/MySQLdb/_mysql.cpython-312-x86_64-linux-gnu.so, from "
        "mysqlclient) is not in the image; add libmariadb3 to runtime-packages in [tool.lifecycle] (RUNTIME_PACKAGES)",
        "libfoo.so.9 (needed by lib/python3.12/site-packages/yaml/_yaml.cpython-312-x86_64-linux-gnu.so, from an "
        "unrecorded file) is not in the image; add the Debian package of libfoo.so.9 to runtime-packages in "
        "[tool.lifecycle] (RUNTIME_PACKAGES)",
    ]


def test_check_libs_passes_when_ldd_finds_everything(tmp_path, monkeypatch):
    check_libs = load_check_libs()
    monkeypatch.setattr(check_libs.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "", ""))
    assert check_libs.main(["check_libs.py", str(fake_venv(tmp_path))]) == 0


def test_a_build_that_failed_on_a_missing_library_is_that_one_line():
    output = (
        "#22 0.4 missing shared library: libpq.so.5 (needed by x.so, from psycopg2) is not in the image; add libpq5"
    )
    output += " to runtime-packages in [tool.lifecycle] (RUNTIME_PACKAGES)\n#22 ERROR: exit code: 1\n"
    error = build_failure(["docker", "compose", "build"], 1, output)
    assert isinstance(error, UserError)
    assert str(error) == (
        "libpq.so.5 (needed by x.so, from psycopg2) is not in the image; add libpq5 to runtime-packages in "
        "[tool.lifecycle] (RUNTIME_PACKAGES); nothing was started"
    )
    assert isinstance(build_failure(["docker", "compose", "build"], 17, "other\n"), CommandFailed)


def test_a_locked_dependency_that_needs_a_system_package_the_settings_lack_is_one_line(tmp_path):
    """python-magic reached the lock through another's extra (django-spirit[files]): adopt saw only that name."""
    write(tmp_path, "req.txt", LOCKED + "python-magic==0.4.27 --hash=sha256:9\n")
    write(tmp_path, "test.txt", LOCKED + "python-magic==0.4.27 --hash=sha256:9\ncoverage==7 --hash=sha256:1\n")
    values = {"REQUIREMENTS": "req.txt", "REQUIREMENTS_TEST": "test.txt", "TEST_RUNNER": "django", "PY_VERSION": "3.12",
              "BUILD_PACKAGES": "build-essential", "RUNTIME_PACKAGES": "libmariadb3"}  # fmt: skip

    def never(argv, **kwargs):
        raise AssertionError(argv)

    with pytest.raises(UserError) as error:
        projectlock.ensure_locks(never, tmp_path, values)
    assert str(error.value) == (
        "python-magic (in .lifecycle/build/locks/runtime.txt) needs the Debian package(s) libmagic1t64: add them to "
        "runtime-packages in [tool.lifecycle] (nothing was built)"
    )
    projectlock.ensure_locks(never, tmp_path, {**values, "RUNTIME_PACKAGES": "libmariadb3 libmagic1t64"})
