"""invoke adopt: refusals that write nothing, and [tool.lifecycle] created, appended or completed, never clobbered.

Real git and a real Python run here (the host's, standing in for a project's virtualenv); no Docker."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lifecycle import adopt
from lifecycle.errors import UserError
from lifecycle.runner import Result, SubprocessRunner
from lifecycle.settings import load_settings
from tests.helpers.recording import RecordingRunner

CHECKOUT = Path(__file__).resolve().parents[2]
RUN = SubprocessRunner(echo=False)

PROJECT = {
    "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shopsite.settings.dev')\n",
    "shopsite/__init__.py": "",
    "shopsite/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shopsite.settings.production')\n",
    "shopsite/settings/__init__.py": "",
    "shopsite/settings/base.py": "WSGI_APPLICATION = 'shopsite.wsgi.application'\nSECRET_KEY = 'x'\n",
    "shopsite/settings/dev.py": "from .base import *\nDEBUG = True\n",
    "shopsite/settings/production.py": "from .base import *\nDEBUG = False\n",
    "catalog/__init__.py": "",
    "requirements.txt": "Django==5.2.1\nmysqlclient==2.2.7\n",
    "Procfile": "release: python manage.py migrate && python manage.py createcachetable\n",
}


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True, env=env)
    return done.stdout


@pytest.fixture
def project(tmp_path) -> Path:
    root = tree(tmp_path / "Shop Site", PROJECT)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    return root


def run_adopt(root: Path, **options) -> list[str]:
    """adopt's detection, refusals and table; the suite's files (Copier, the wheel) are tests/integration's."""
    return adopt.adopt(root, RUN, python=options.pop("python", sys.executable), files=False, **options)


# --------------------------------------------------------------------------------------------- the happy path


def test_adopt_writes_the_detected_table_and_the_suite_reads_it(project):
    lines = run_adopt(project)
    assert lines[-1] == f"{project / 'pyproject.toml'}: created [tool.lifecycle] (26 key(s)); commit it"
    assert "settings:         dev shopsite.settings.dev, test shopsite.settings.dev, stage/prod " \
        "shopsite.settings.production" in lines  # fmt: skip
    table = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["lifecycle"]
    assert table["settings"] == {"dev": "shopsite.settings.dev", "prod": "shopsite.settings.production"}
    assert (table["proj-name"], table["code"]) == ("shop-site", ["manage.py", "catalog", "shopsite"])
    assert table["release-commands"] == ["createcachetable"]
    settings = load_settings(root=project, environ={})
    assert (settings["SETTINGS_PROD"], settings["WSGI_APP"], settings["RELEASE_COMMANDS"]) == (
        "shopsite.settings.production", "shopsite.wsgi:application", "createcachetable",
    )  # fmt: skip
    assert settings["REQUIREMENTS"] == "requirements.txt"
    # No test requirements found: the runtime's, never django_site's own test lock (nox -s adopt: Wagtail's 6.1).
    assert (table["requirements-test"], settings["REQUIREMENTS_TEST"]) == (["requirements.txt"], "requirements.txt")
    assert table["media"] is False
    assert git(project, "status", "--porcelain") == "?? pyproject.toml\n"  # nothing else touched


def test_adopting_twice_writes_nothing_the_second_time(project):
    run_adopt(project)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "adopted")
    before = (project / "pyproject.toml").read_text()
    assert run_adopt(project)[-1].endswith("[tool.lifecycle] already complete; nothing written")
    assert (project / "pyproject.toml").read_text() == before


def test_an_existing_pyproject_gets_the_table_appended_and_keeps_every_byte(project):
    mine = "[project]\nname = 'shop'  # ours\ndependencies = ['django']\n\n[tool.ruff]\nline-length = 99"
    tree(project, {"pyproject.toml": mine})
    git(project, "add", "-A")
    git(project, "commit", "-qm", "pyproject")
    run_adopt(project)
    text = (project / "pyproject.toml").read_text()
    assert text.startswith(mine + "\n\n# The lifecycle suite's settings")
    assert tomllib.loads(text)["tool"]["ruff"] == {"line-length": 99}


def test_a_users_table_is_completed_never_changed(project):
    tree(project, {"pyproject.toml": (
        "[tool.lifecycle]\ntest-runner = 'pytest'  # we use pytest\ncode = ['manage.py', 'shopsite']\n\n"
        "[tool.lifecycle.settings]\nprod = 'shopsite.settings.live'\n\n[tool.other]\nx = 1\n"
    )})  # fmt: skip
    git(project, "add", "-A")
    git(project, "commit", "-qm", "ours")
    lines = run_adopt(project, force=True)
    table = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["lifecycle"]
    assert (table["test-runner"], table["code"]) == ("pytest", ["manage.py", "shopsite"])  # theirs
    assert table["settings"] == {"prod": "shopsite.settings.live", "dev": "shopsite.settings.dev"}  # one added
    assert table["wsgi-app"] == "shopsite.wsgi:application"  # added
    assert {"kept yours: code (detected differently)", "kept yours: settings.prod (detected differently)",
            "kept yours: test-runner (detected differently)"} <= set(lines)  # fmt: skip
    assert "test-runner = 'pytest'  # we use pytest\n" in (project / "pyproject.toml").read_text()


# --------------------------------------------------------------------------------------------- refusals


def unchanged(root: Path) -> str:
    return git(root, "status", "--porcelain")


def test_not_a_django_project(project):
    (project / "manage.py").unlink()
    with pytest.raises(UserError, match=r"is not a Django project: no manage.py"):
        run_adopt(project)
    assert not (project / "pyproject.toml").exists()


def test_the_suites_own_checkout_is_refused():
    with pytest.raises(UserError, match=r"is inside the suite's own checkout"):
        run_adopt(CHECKOUT / "django_site")


def test_not_a_folder(tmp_path):
    with pytest.raises(UserError, match=r"missing is not a folder"):
        run_adopt(tmp_path / "missing")


def test_a_dirty_tree_is_refused_unless_forced(project):
    (project / "catalog" / "models.py").write_text("# work in progress\n")
    with pytest.raises(UserError, match=r"has 1 uncommitted change\(s\) \(first: catalog/models.py\); commit or"):
        run_adopt(project)
    assert not (project / "pyproject.toml").exists()
    assert "note: --force: adopting over 1 uncommitted change(s)" in run_adopt(project, force=True)


def test_outside_git_is_a_note_not_a_refusal(tmp_path):
    root = tree(tmp_path / "plain", PROJECT)
    lines = run_adopt(root)
    assert any("is not a git repository" in line for line in lines)
    assert (root / "pyproject.toml").is_file()


@pytest.mark.parametrize(
    ("source", "said"),
    [
        pytest.param(
            "from .base import *\nimport os\nSECRET_KEY = os.environ['SHOP_SECRET']\n", "KeyError: 'SHOP_SECRET'",
            id="a missing variable",
        ),
        pytest.param(
            "from .base import *\nDEBUG = (\n", "SyntaxError: '(' was never closed (production.py, line 2)",
            id="a syntax error",
        ),
        pytest.param(
            "from .base import *\nfrom shopsite.nothere import X\n",
            "ModuleNotFoundError: No module named 'shopsite.nothere'", id="a module of the project's that is not there",
        ),
        pytest.param(
            "class ImproperlyConfigured(Exception):\n    pass\nraise ImproperlyConfigured('Set the DATABASE_URL')\n",
            "shopsite.settings.production.ImproperlyConfigured: Set the DATABASE_URL", id="the exception's own line",
        ),
    ],
)  # fmt: skip
def test_settings_that_do_not_import_are_refused_with_their_own_line(project, source, said):
    tree(project, {"shopsite/settings/production.py": source})
    git(project, "commit", "-qam", "broken")
    with pytest.raises(UserError) as raised:
        run_adopt(project)
    assert str(raised.value) == f"settings module shopsite.settings.production does not import: {said}"
    assert unchanged(project) == ""


def test_a_third_party_module_missing_here_is_a_note(project):
    tree(project, {"shopsite/settings/base.py": "import wagtail_not_installed_here\n"})
    git(project, "commit", "-qam", "third party")
    lines = run_adopt(project)
    assert (
        "note: settings shopsite.settings.production not fully checked: wagtail_not_installed_here is not installed "
        "here (the images install it)"
    ) in lines


def test_the_environment_reaches_the_settings_check(project, monkeypatch):
    tree(project, {"shopsite/settings/production.py": "import os\nX = os.environ['SHOP_SECRET']\n"})
    git(project, "commit", "-qam", "needs a variable")
    monkeypatch.setenv("SHOP_SECRET", "set")
    assert run_adopt(project)[-1].endswith("commit it")


def test_without_a_python_the_check_is_a_note(project):
    lines = adopt.adopt(project, RUN, files=False)
    assert "note: settings not import-checked: no .venv/bin/python in the project; pass --python with Django " \
        "installed" in lines  # fmt: skip


def test_a_dry_run_writes_nothing(project):
    assert run_adopt(project, dry=True)[-1].startswith("dry run: would write 26 key(s)")
    assert not (project / "pyproject.toml").exists()


# --------------------------------------------------------------------------------------------- argv and merge


def test_argv():
    assert adopt.git_status_argv(Path("/p")) == ["git", "-C", "/p", "status", "--porcelain", "--untracked-files=normal"]
    assert adopt.check_settings_argv("/p/.venv/bin/python", Path("/p"), "m.settings") == [
        "/p/.venv/bin/python", str(CHECKOUT / "lifecycle" / "check_settings.py"), "/p", "m.settings",
    ]  # fmt: skip


def test_the_projects_own_virtualenv_is_the_default_python(tmp_path):
    tree(tmp_path, {".venv/bin/python": ""})
    assert adopt.project_python(tmp_path, None) == str(tmp_path / ".venv" / "bin" / "python")
    assert adopt.project_python(tmp_path, "/usr/bin/python3") == "/usr/bin/python3"
    assert adopt.project_python(tmp_path / "none", None) is None


def test_a_git_failure_other_than_a_dirty_tree_is_a_note(tmp_path):
    runner = RecordingRunner(default=Result(128, "", "fatal: not a git repository"))
    assert "is not a git repository" in adopt.refuse_dirty(tmp_path, runner, force=False)


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        pytest.param("[tool\n", r"pyproject.toml is not valid TOML", id="broken TOML"),
        pytest.param("[tool]\nlifecycle = { code = ['x'] }\n", r"without a \[tool.lifecycle\] header", id="inline"),
    ],
)
def test_merges_that_cannot_be_done_safely_are_refused(existing, message):
    with pytest.raises(UserError, match=message):
        adopt.merge(existing, {"code": ["manage.py"], "settings": {"dev": "a.b"}})


def test_rendered_strings_are_toml_strings():
    text = adopt.render({"a": 'say "hi" \\ ok', "b": ["x", "y"], "c": False, "t": {"d": "e"}})
    assert tomllib.loads(text) == {"tool": {"lifecycle": {"a": 'say "hi" \\ ok', "b": ["x", "y"], "c": False,
                                                          "t": {"d": "e"}}}}  # fmt: skip


# --------------------------------------------------------------------------------------------- Python and Django fit


def found_with(django: str = "", requires_python: str = "") -> adopt.Detected:
    return adopt.Detected(
        root=Path("/p"), manage_dir=".", settings_dev="m.s", settings_prod="m.s", settings_test="m.s",
        settings_modules=("m.s",), wsgi_app="m.wsgi:application", packages=("m",), requirements=(),
        test_requirements=(), test_runner="django", static={}, media={}, release_commands=(),
        django_requirement=django, requires_python=requires_python,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("django", "py_version"),
    [
        pytest.param("Django==5.2.1", "3.12", id="5.2 on 3.12"),
        pytest.param("django>=4.2,<6", "3.13", id="a range whose newest runs"),
        pytest.param("Django~=4.2.0", "3.12", id="4.2 on its newest Python"),
        pytest.param("Django", "3.12", id="unpinned"),
        pytest.param("Django==6.0.1", "3.14", id="6.0 on 3.14"),
    ],
)
def test_a_django_the_images_can_run_passes(django, py_version):
    assert adopt.refuse_python_mismatch(found_with(django), py_version, "python:X-slim") == []


@pytest.mark.parametrize(
    ("django", "requires_python", "py_version", "message"),
    [
        pytest.param(
            "Django==3.2.25", "", "3.12",
            r"^Django==3.2.25 \(Django 3.2\) runs on Python 3.6 to 3.10, not the images' 3.12 \(PY_VERSION, "
            r"python:3.12-slim\); set py-version = \"3.10\" in \[tool.lifecycle\]$",
            id="Django 3.2 on 3.12",
        ),
        pytest.param(
            "Django>=6.0,<6.1", "", "3.11", r"Django 6.0\) runs on Python 3.12 to 3.14.*set py-version = \"3.14\"",
            id="Django 6.0 on 3.11",
        ),
        pytest.param(
            "Django==2.2.28", "", "3.12", r"runs on Python 3.5 to 3.9, .*; upgrade Django$", id="older than any image",
        ),
        pytest.param(
            "", ">=3.13", "3.12",
            r"^requires-python >=3.13 excludes the images' Python 3.12 \(PY_VERSION, python:3.12-slim\); "
            r"set py-version = \"3.14\"", id="requires-python",
        ),
    ],
)  # fmt: skip
def test_a_django_or_python_the_images_cannot_run_is_refused(django, requires_python, py_version, message):
    with pytest.raises(UserError, match=message):
        adopt.refuse_python_mismatch(found_with(django, requires_python), py_version, f"python:{py_version}-slim")


@pytest.mark.parametrize(
    ("django", "requires_python", "note"),
    [
        ("Django==9.0", "", "Django requirement 'Django==9.0' not understood; Python fit not checked"),
        ("Django @ https://x/y.zip", "", "Django requirement 'Django @ https://x/y.zip' not understood"),
        ("", "three", "requires-python 'three' is not a version specifier; not checked"),
    ],
)
def test_what_cannot_be_told_is_a_note(django, requires_python, note):
    assert adopt.refuse_python_mismatch(found_with(django, requires_python), "3.12", "i")[0].startswith(note)


def test_the_projects_py_version_is_what_the_fit_is_checked_against(project):
    tree(project, {"requirements.txt": "Django==3.2.25\nmysqlclient\n"})
    git(project, "commit", "-qam", "old django")
    with pytest.raises(UserError, match=r"not the images' 3.12 .*set py-version = \"3.10\""):
        run_adopt(project)
    assert unchanged(project) == ""
    tree(project, {"pyproject.toml": "[tool.lifecycle]\npy-version = '3.10'\n"})
    git(project, "add", "-A")
    git(project, "commit", "-qm", "python 3.10")
    assert run_adopt(project)[-1].endswith("commit it")


def test_the_table_carries_what_the_dependencies_and_settings_need(project):
    tree(project, {
        "requirements.txt": "Django==5.2.1\nmysqlclient\npycurl\ndjango-compressor\n",
        "shopsite/settings/production.py": "from .base import *\nCOMPRESS_OFFLINE = True\n"
        "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.db.DatabaseCache'}}\n",
    })  # fmt: skip
    git(project, "commit", "-qam", "more")
    run_adopt(project)
    table = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["lifecycle"]
    assert table["build-packages"][-2:] == ["libcurl4-openssl-dev", "libssl-dev"]
    assert table["runtime-packages"] == ["libmariadb3", "libcurl4t64"]
    assert table["build-steps"] == ["compress"]
    assert table["release-commands"] == ["createcachetable"]  # once, from the Procfile and the cache alike
