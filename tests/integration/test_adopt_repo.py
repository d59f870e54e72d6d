"""An adopted repository, made as a user makes one: `django-admin startproject` + git, then `invoke adopt PATH` from
the suite's checkout, then `./scripts/bootstrap` there. The suite's files and its wheel land in the project (no copy
of lifecycle/), its own .venv runs invoke and nox from the wheel, `invoke zip` and `invoke up --stage prod` work from
it and prod answers /health; adopting again after both the project and the template changed merges the template's
change and keeps a conflicting file of the project's as committed, the template's side beside it.

The suite adopted from is a clone of this checkout as it is (uncommitted changes committed in the clone), so the
last test can commit a template change in it without touching the checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CHECKOUT
from tests.helpers.engine import free_port, unique_name
from tests.helpers.tools import BUILD_TIMEOUT, INVOKE_TIMEOUT, PYTHON_FOR_TASKS, UP_TIMEOUT, run_combined, strip_ansi

pytestmark = pytest.mark.integration

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
# What the adopted project's own tools run with: this environment without what points at the suite's checkout.
PROJECT_ENV = {k: v for k, v in os.environ.items() if k not in ("LIFECYCLE_ROOT", "PYTHONPATH", "VIRTUAL_ENV")}


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **GIT_ENV})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def suite_clone(dest: Path) -> Path:
    """This checkout as it is, as a git repository of its own: tracked changes and new files committed there."""
    git(dest.parent, "clone", "--quiet", "--shared", str(CHECKOUT), dest.name)
    for name in git(CHECKOUT, "ls-files", "--modified", "--others", "--exclude-standard", "-z").split("\0"):
        source, target = CHECKOUT / name, dest / name
        if not name or not (source.exists() or source.is_symlink()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    for name in git(CHECKOUT, "ls-files", "--deleted", "-z").split("\0"):
        if name:
            (dest / name).unlink(missing_ok=True)
    git(dest, "add", "-A")
    if git(dest, "status", "--porcelain"):
        git(dest, "commit", "--quiet", "-m", "the checkout's uncommitted changes")
    return dest


def adopt(suite: Path, project: Path) -> subprocess.CompletedProcess[str]:
    """`invoke adopt PROJECT` from the suite's checkout, without a terminal (stdin closed)."""
    argv = [PYTHON_FOR_TASKS, "-m", "invoke", "adopt", str(project), "--python", sys.executable]
    return run_combined(argv, cwd=suite, timeout=INVOKE_TIMEOUT)


def in_project(project: Path, *argv: str, timeout: float = INVOKE_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return run_combined(argv, cwd=project, env=PROJECT_ENV, timeout=timeout)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    return suite_clone(tmp_path_factory.mktemp("suite") / "lifecycle")


def startproject(root: Path) -> Path:
    root.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", "."], cwd=root, check=True)
    git(root, "init", "--quiet")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "startproject")
    return root


@pytest.fixture(scope="module")
def adopted(suite, tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """A startproject repository adopted from `suite`, committed, with ports and a compose project of its own, and
    set up by its own scripts/bootstrap. Its containers, volumes and images go at the end."""
    project = startproject(tmp_path_factory.mktemp("adopted") / "myproject")
    done = adopt(suite, project)
    assert done.returncode == 0, done.stdout
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "adopt the lifecycle suite")
    ports = {"APP_PORT": free_port(), "HTTPS_PORT": free_port(), "REGISTRY_PORT": free_port()}
    lines = [f"COMPOSE_PROJECT_NAME={unique_name('it-adopted')}", *(f"{k}={v}" for k, v in ports.items())]
    (project / ".env").write_text("\n".join(lines) + "\n")
    setup = in_project(project, "./scripts/bootstrap", timeout=BUILD_TIMEOUT)
    assert setup.returncode == 0, setup.stdout[-3000:]
    try:
        yield project, strip_ansi(done.stdout)
    finally:
        in_project(project, ".venv/bin/invoke", "clean", "--volumes", "--yes", "--no-backup", timeout=UP_TIMEOUT)


def env_value(project: Path, name: str) -> str:
    return next(line.split("=", 1)[1] for line in (project / ".env").read_text().splitlines() if line.startswith(name))


def answered_commit(answers: str) -> str:
    """The template commit .copier-answers.yml records (YAML quotes a hash that is all digits, as 2488518 was)."""
    found = re.search(r"^_commit: '?([0-9a-f]+)'?$", answers, re.MULTILINE)
    assert found, answers
    return found.group(1)


def test_adopt_writes_the_suites_files_and_pins_its_wheel_not_a_copy_of_the_library(adopted, suite):
    project, output = adopted
    for name in ("tasks.py", "noxfile.py", ".ci/run", "docker/Dockerfile", "docker/compose.yaml", ".env.example",
                 "bash_files/entrypoint.sh", "requirements/build.txt", ".gitignore", ".gitattributes",
                 ".dockerignore"):  # fmt: skip
        assert (project / name).is_file(), name
    assert os.access(project / "scripts" / "bootstrap", os.X_OK)
    assert not (project / "lifecycle").exists() and not (project / "lifecycle_site").exists()
    assert (project / "tasks.py").read_text() == (CHECKOUT / "tasks.py").read_text()  # the same shim
    answers = (project / ".copier-answers.yml").read_text()
    assert answered_commit(answers) == git(suite, "rev-parse", "--short", "HEAD").strip()
    assert re.search(r"^suite_version: \S+$", answers, re.MULTILINE)
    assert '_src_path: "lifecycle-suite"' in answers and str(suite) not in answers  # no machine's folder
    wheels = list((project / ".lifecycle-suite" / "wheels").glob("lifecycle_suite-*.whl"))
    assert len(wheels) == 1
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    lock = (project / ".lifecycle-suite" / "tools.txt").read_text()
    assert f"./.lifecycle-suite/wheels/{wheels[0].name} \\\n    --hash=sha256:{digest}\n" in lock
    table = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["lifecycle"]
    assert (table["proj-name"], table["wsgi-app"]) == ("myproject", "mysite.wsgi:application")
    assert f"{project / '.copier-answers.yml'}: suite " in output  # what was written is printed
    assert f"{wheels[0]}: the suite's wheel, sha256 {digest}" in output
    assert git(project, "status", "--porcelain") == ""  # .env, .venv, .lifecycle/: ignored by the lines it added


def test_the_adopted_repo_runs_the_suite_from_its_own_venv(adopted):
    project, _ = adopted
    where = in_project(project, ".venv/bin/python", "-c", "import lifecycle, lifecycle.settings as s; "
                       "print(lifecycle.__file__); print(s.ROOT)")  # fmt: skip
    module, root = where.stdout.split()
    assert "/site-packages/lifecycle/" in module and Path(root) == project  # the wheel, working on the project
    listed = in_project(project, ".venv/bin/invoke", "--list")
    assert listed.returncode == 0, listed.stdout
    assert {"up", "zip", "build", "db.backup", "release"} <= set(re.findall(r"^  (\S+)", listed.stdout, re.M))
    sessions = in_project(project, ".venv/bin/nox", "--list")
    assert sessions.returncode == 0, sessions.stdout
    assert re.search(r"^\* qa ", sessions.stdout, re.M) and re.search(r"^- e2e ", sessions.stdout, re.M)
    zipped = in_project(project, ".venv/bin/invoke", "zip")
    assert zipped.returncode == 0, zipped.stdout
    with zipfile.ZipFile(project / "updated_zip" / "Project_playground.zip") as archive:
        names = set(archive.namelist())
    assert {"manage.py", "mysite/settings.py", "mysite/wsgi.py"} <= names
    assert not [name for name in names if name.startswith(("lifecycle", "docker/", ".lifecycle"))]


def test_prod_from_the_adopted_repo_answers_health(adopted):
    project, _ = adopted
    up = in_project(project, ".venv/bin/invoke", "up", "--stage", "prod", timeout=UP_TIMEOUT)
    assert up.returncode == 0, up.stdout[-3000:]
    assert "the suite's code for the images:" in up.stdout  # lifecycle_site/ from the wheel, not from the tree
    url = f"http://127.0.0.1:{env_value(project, 'APP_PORT')}/health"
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert (answer.status, json.loads(answer.read())) == (200, {"status": "ok", "database": "reachable"})
    down = in_project(project, ".venv/bin/invoke", "down", timeout=UP_TIMEOUT)
    assert down.returncode == 0, down.stdout


def test_a_first_adoption_over_a_projects_own_tasks_py_is_one_line_and_writes_nothing(suite, tmp_path):
    project = tmp_path / "theirs"
    startproject(project)
    (project / "tasks.py").write_text("from invoke import task\n")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "their own tasks")
    done = adopt(suite, project)
    assert done.returncode == 1
    assert strip_ansi(done.stdout).strip().splitlines()[-1] == (
        f"error: {project} already has tasks.py, not written by the suite (.copier-answers.yml is missing); rename "
        "or remove it, then adopt again"
    )
    assert git(project, "status", "--porcelain", "--ignored") == ""


def test_adopting_again_merges_the_templates_change_and_keeps_a_conflicting_file_of_the_projects(
    adopted, suite, tmp_path
):
    project, _ = adopted
    compose, qa, health = project / "docker" / "compose.yaml", project / "bash_files" / "qa.sh", "docker/healthcheck.py"
    ours = compose.read_text().replace("x-build: &build\n", "x-build: &build  # ours: tuned for our CI\n", 1)
    compose.write_text(ours)
    qa.write_text(qa.read_text() + "# our own note\n")
    git(project, "commit", "--quiet", "-am", "our changes to the suite's files")
    template = (suite / "docker" / "compose.yaml").read_text()
    (suite / "docker" / "compose.yaml").write_text(template.replace("x-build: &build\n", "x-build: &build  # v2\n", 1))
    (suite / health).write_text((suite / health).read_text() + "# a template change nobody else made\n")
    git(suite, "commit", "--quiet", "-am", "a new template")
    # from another clone of the suite (a CI job's, a colleague's): the answers name no machine's folder
    elsewhere = tmp_path / "another-clone"
    git(tmp_path, "clone", "--quiet", str(suite), elsewhere.name)
    done = adopt(elsewhere, project)
    output = strip_ansi(done.stdout)
    assert done.returncode == 0, output
    assert compose.read_text() == ours  # theirs, exactly as committed
    conflict = (project / "docker" / "compose.yaml.conflict").read_text()
    assert "x-build: &build  # ours: tuned for our CI\n" in conflict and "x-build: &build  # v2\n" in conflict
    assert f"conflict: {compose}: yours kept as committed" in output
    assert (project / health).read_text().endswith("# a template change nobody else made\n")  # merged
    assert qa.read_text().endswith("# our own note\n")  # untouched by the template: kept
    answers = (project / ".copier-answers.yml").read_text()
    assert answered_commit(answers) == git(suite, "rev-parse", "--short", "HEAD").strip()
    assert '_src_path: "lifecycle-suite"' in answers and str(tmp_path) not in answers
    again = adopt(suite, project)  # the conflict file is an uncommitted change: refused, nothing written
    assert again.returncode == 1
    assert "uncommitted change(s)" in strip_ansi(again.stdout).strip().splitlines()[-1]
