"""What `invoke adopt` writes besides [tool.lifecycle] (lifecycle/scaffold.py), and where the suite finds the project
(lifecycle/layout.py): the template's files, Copier's argv, the tools lock, the ignore lines, conflicts kept aside.

Copier, the wheel and a real adopted repository run in tests/integration/test_adopt_repo.py."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from lifecycle import __version__, layout, scaffold, wheel
from lifecycle.errors import UserError
from tests.helpers.recording import RecordingRunner

CHECKOUT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------- the template


def test_the_template_writes_the_shims_and_what_the_images_build_from_and_no_library_code():
    files = scaffold.template_files(CHECKOUT)
    for name in ("tasks.py", "noxfile.py", "scripts/bootstrap", ".ci/run", ".env.example", ".copier-answers.yml",
                 "docker/Dockerfile", "docker/compose.yaml", "docker/proxy/haproxy.cfg", "bash_files/entrypoint.sh",
                 *layout.IMAGE_LOCKS):  # fmt: skip
        assert name in files
    assert not [name for name in files if name.startswith(("lifecycle/", "lifecycle_site/", "django_site/", "tests/"))]
    assert not [name for name in files if name.endswith((".jinja", ".pyc"))]


def test_the_templates_shims_and_bootstrap_are_this_checkouts_own():
    # One copy: the template links to them, so what the suite runs is what an adopted project gets.
    for name in ("tasks.py", "noxfile.py", "docker", "bash_files", "scripts"):
        assert (CHECKOUT / "template" / name).resolve() == (CHECKOUT / name).resolve(), name
    assert len((CHECKOUT / "tasks.py").read_text().splitlines()) < 10  # a shim


def test_the_shims_import_the_front_ends_from_the_package():
    assert "from lifecycle.cli.tasks import ns" in (CHECKOUT / "tasks.py").read_text()
    noxfile = (CHECKOUT / "noxfile.py").read_text()
    assert "import lifecycle.cli.sessions" in noxfile
    assert 'nox.needs_version = ">=' in noxfile  # nox reads it from the noxfile's own text


def test_the_templates_scripts_are_executable():
    for name in ("scripts/bootstrap", ".ci/run"):
        assert os.access(CHECKOUT / "template" / name, os.X_OK), name


# --------------------------------------------------------------------------------------------- copy or update


@pytest.fixture
def suite(tmp_path) -> Path:
    root = tmp_path / "suite"
    (root / "template" / "docker").mkdir(parents=True)
    (root / "copier.yml").write_text("_subdirectory: template\n")
    (root / "template" / "tasks.py").write_text("")
    (root / "template" / "docker" / "compose.yaml").write_text("")
    (root / "template" / scaffold.ANSWERS_TEMPLATE).write_text("")
    return root


def test_a_first_adoption_copies_and_a_later_one_updates(tmp_path, suite):
    project = tmp_path / "project"
    project.mkdir()
    copying = scaffold.plan(project, suite)
    assert not copying.update
    assert scaffold.copier_argv("/py", copying, "1.2.3") == [
        "/py", "-m", "copier", "copy", "--defaults", "--trust", "--vcs-ref", "HEAD", "--data", "suite_version=1.2.3",
        "--answers-file", ".lifecycle/copier-answers.yml", str(suite), str(project),
    ]  # fmt: skip
    (project / ".copier-answers.yml").write_text("_commit: abc\n")
    updating = scaffold.plan(project, suite)
    assert updating.update
    assert scaffold.copier_argv("/py", updating, "1.2.3") == [
        "/py", "-m", "copier", "update", "--defaults", "--trust", "--vcs-ref", "HEAD", "--data", "suite_version=1.2.3",
        "--answers-file", ".lifecycle/copier-answers.yml", "--conflict", "inline", str(project),
    ]  # fmt: skip
    assert scaffold.copier_argv("/py", updating)[9] == f"suite_version={__version__}"


@pytest.mark.parametrize(
    ("answers", "source", "expected"),
    [
        ("_commit: abc\n_src_path: /home/me/suite\nsuite_version: 1.0.0\n", "lifecycle-suite",
         "_commit: abc\n_src_path: \"lifecycle-suite\"\nsuite_version: 1.0.0\n"),
        ("_commit: abc\n_src_path: lifecycle-suite\n", "/tmp/a b\\c", '_commit: abc\n_src_path: "/tmp/a b\\\\c"\n'),
        ("_commit: abc\n", "/srv/suite", '_src_path: "/srv/suite"\n_commit: abc\n'),
    ],
    ids=["committed", "quoted", "missing"],
)  # fmt: skip
def test_the_answers_name_the_suite_and_copier_reads_the_checkout_adopting_now(answers, source, expected):
    assert scaffold.with_source(answers, source) == expected


@pytest.mark.parametrize(
    ("present", "message"),
    [
        (["tasks.py"], "already has tasks.py, not written by the suite (.copier-answers.yml is missing); rename or "
                       "remove it, then adopt again"),
        (["tasks.py", "docker/compose.yaml"], "already has docker/compose.yaml and 1 more of the suite's files"),
    ],
    ids=["one", "two"],
)  # fmt: skip
def test_a_first_adoption_never_writes_over_a_projects_own_file(tmp_path, suite, present, message):
    project = tmp_path / "project"
    for name in present:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("mine")
    with pytest.raises(UserError, match=re.escape(message)):
        scaffold.plan(project, suite)


def test_adopting_from_anything_but_a_suite_checkout_is_refused(tmp_path):
    with pytest.raises(UserError, match=re.escape("holds no copier.yml: adopt from a checkout of the suite")):
        scaffold.plan(tmp_path, tmp_path / "nowhere")


def test_a_dry_run_says_what_it_would_run_and_runs_nothing_but_git_status(tmp_path, suite):
    run = RecordingRunner()
    lines = scaffold.write(scaffold.plan(tmp_path, suite), run, dry=True, python="/py")
    assert lines[0] == (
        f"dry run: would run /py -m copier copy --defaults --trust --vcs-ref HEAD --data suite_version={__version__} "
        f"--answers-file .lifecycle/copier-answers.yml {suite} {tmp_path}"
    )
    assert run.calls == [scaffold.suite_status_argv(suite)]


def test_uncommitted_template_changes_in_the_suite_are_a_note():
    assert scaffold.uncommitted_template_note("") == []
    (note,) = scaffold.uncommitted_template_note(" M docker/compose.yaml\n?? template/new\n")
    assert note.startswith("note: the suite's checkout has 2 uncommitted change(s) to the template (first: "
                           "docker/compose.yaml): they are adopted, but")  # fmt: skip
    assert scaffold.suite_status_argv(Path("/s"))[:6] == ["git", "-C", "/s", "status", "--porcelain", "--"]


# --------------------------------------------------------------------------------------------- conflicts


def test_a_conflict_keeps_the_projects_file_and_puts_both_sides_beside_it(tmp_path):
    marked = "a\n<<<<<<< before updating\nmine\n=======\ntheirs\n>>>>>>> after updating\n"
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "compose.yaml").write_text(marked)
    run = RecordingRunner()
    lines = scaffold.keep_theirs(tmp_path, run, ["docker/compose.yaml"])
    assert run.calls == [["git", "-C", str(tmp_path), "checkout", "HEAD", "--", "docker/compose.yaml"]]
    assert (tmp_path / "docker" / "compose.yaml.conflict").read_text() == marked
    assert lines == [
        f"conflict: {tmp_path / 'docker' / 'compose.yaml'}: yours kept as committed; the template changed the same "
        "lines: both sides are in compose.yaml.conflict beside it (<<<<<<< before updating: yours, >>>>>>> after "
        "updating: the template's); merge by hand, then delete it"
    ]
    assert scaffold.conflicted_argv(tmp_path) == ["git", "-C", str(tmp_path), "diff", "--name-only", "--diff-filter=U"]


# --------------------------------------------------------------------------------------------- what else is written


def test_the_tools_lock_is_the_suites_plus_its_wheel_by_path_and_hash(tmp_path):
    built = wheel.Wheel(tmp_path / "lifecycle_suite-0.1.0-py3-none-any.whl", "ab" * 32)
    text = scaffold.tools_lock_text("invoke==2.2.1 \\\n    --hash=sha256:00\n", built)
    assert text.endswith(
        "invoke==2.2.1 \\\n    --hash=sha256:00\n"
        "./.lifecycle-suite/wheels/lifecycle_suite-0.1.0-py3-none-any.whl \\\n"
        f"    --hash=sha256:{'ab' * 32}\n"
    )
    assert text.startswith("# The container lifecycle suite's host tooling, hash-locked (invoke adopt")


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, "# header\n.venv/\n.env\n"),
        ("", "# header\n.venv/\n.env\n"),
        ("*.log", "*.log\n\n# header\n.venv/\n.env\n"),
        ("*.log\n.env\n", "*.log\n.env\n\n# header\n.venv/\n"),
        (".env\n  .venv/  \n", None),
    ],
    ids=["none", "empty", "no-newline", "one-missing", "complete"],
)
def test_ignore_lines_are_added_where_missing_and_every_line_kept(existing, expected):
    assert scaffold.ignore_text(existing, [".venv/", ".env"], "# header") == expected


def test_a_project_without_a_dockerignore_gets_the_suites_as_it_is(tmp_path):
    found = scaffold.ignore_files(tmp_path, CHECKOUT)
    assert found[tmp_path / ".dockerignore"] == (CHECKOUT / ".dockerignore").read_text()
    assert found[tmp_path / ".gitignore"].startswith(scaffold.IGNORE_HEADER + "\n__pycache__/\n.venv/\n")
    assert found[tmp_path / ".gitattributes"].splitlines()[1:] == list(scaffold.GITATTRIBUTES_LINES)
    suite_rules = (CHECKOUT / ".gitattributes").read_text().splitlines()
    assert set(scaffold.GITATTRIBUTES_LINES) <= set(suite_rules)  # the suite's own rules for its scripts
    (tmp_path / ".dockerignore").write_text("node_modules\n.git\n")
    text = scaffold.ignore_files(tmp_path, CHECKOUT)[tmp_path / ".dockerignore"]
    assert text.startswith("node_modules\n.git\n\n" + scaffold.DOCKERIGNORE_HEADER + "\n.gitattributes\n")
    assert "\n.git\n" not in text.split(scaffold.DOCKERIGNORE_HEADER)[1]  # the project's line is not repeated


def test_the_wheelhouse_holds_one_build_of_the_suite(tmp_path):
    source = tmp_path / "dist" / "lifecycle_suite-0.2.0-py3-none-any.whl"
    source.parent.mkdir()
    source.write_bytes(b"new")
    house = tmp_path / layout.WHEELHOUSE
    house.mkdir(parents=True)
    (house / "lifecycle_suite-0.1.0-py3-none-any.whl").write_bytes(b"old")
    (house / "other-1.0-py3-none-any.whl").write_bytes(b"theirs")
    target = scaffold.install_wheel(tmp_path, wheel.Wheel(source, hashlib.sha256(b"new").hexdigest()))
    assert sorted(p.name for p in house.iterdir()) == ["lifecycle_suite-0.2.0-py3-none-any.whl",
                                                       "other-1.0-py3-none-any.whl"]  # fmt: skip
    assert target.read_bytes() == b"new"


# --------------------------------------------------------------------------------------------- layout


def test_the_suites_checkout_is_its_own_root_wherever_it_is_run_from(tmp_path):
    assert layout.find_root(cwd=tmp_path, environ={}, package_parent=CHECKOUT) == CHECKOUT
    assert layout.find_root(cwd=CHECKOUT, environ={"LIFECYCLE_ROOT": str(tmp_path)}) == tmp_path.resolve()


@pytest.mark.parametrize("marker", ["tasks.py", "noxfile.py", ".copier-answers.yml"])
def test_installed_the_root_is_the_nearest_folder_up_with_a_marker(tmp_path, marker):
    site_packages = tmp_path / "venv" / "site-packages"  # no lifecycle sources beside a tasks.py
    project, inside = tmp_path / "project", tmp_path / "project" / "mysite" / "templates"
    inside.mkdir(parents=True)
    (project / marker).write_text("")
    assert layout.find_root(cwd=inside, environ={}, package_parent=site_packages) == project
    assert layout.find_root(cwd=tmp_path, environ={}, package_parent=site_packages) == tmp_path  # none: where it runs


def test_each_layout_has_its_tools_lock_and_suite_code(tmp_path):
    assert layout.tools_lock(CHECKOUT) == CHECKOUT / "requirements" / "tools.txt"
    assert layout.tools_lock(tmp_path) == tmp_path / ".lifecycle-suite" / "tools.txt"
    assert (layout.suite_code(CHECKOUT), layout.suite_code(tmp_path)) == (".", ".lifecycle/build/suite")
    assert layout.stage_suite_code(CHECKOUT) == []  # in the build context already


def test_an_adopted_project_gets_the_suites_code_for_the_images_from_the_package(tmp_path):
    written = layout.stage_suite_code(tmp_path)
    staged = tmp_path / ".lifecycle" / "build" / "suite"
    assert "lifecycle/unpack_zip.py" in [str(p.relative_to(staged)) for p in staged.rglob("*.py")]
    for name in ("__init__.py", "layer.py", "settings.py", "wsgi.py", "health.py"):
        assert (staged / "lifecycle_site" / name).read_bytes() == (CHECKOUT / "lifecycle_site" / name).read_bytes()
    assert len(written) == len(list(staged.rglob("*.py")))
    (staged / "lifecycle_site" / "gone.py").write_text("")  # from an older suite
    assert layout.stage_suite_code(tmp_path) == []  # all current: nothing written again
    assert not (staged / "lifecycle_site" / "gone.py").exists()


def test_detection_skips_the_suites_own_locks_in_an_adopted_project(tmp_path):
    from lifecycle.detect_deps import requirement_files

    for name in ("requirements/build.txt", "requirements/base.txt", "requirements.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("django\n")
    assert len(requirement_files(tmp_path)) == 3  # not adopted: all the project's
    (tmp_path / ".copier-answers.yml").write_text("_commit: abc\n")
    assert [p.name for p in requirement_files(tmp_path)] == ["requirements.txt", "base.txt"]
