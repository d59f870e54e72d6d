"""The code zip: deterministic bytes, the exclusion policy, refusals, the manifest and the checks (real files)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle import codezip, unpack_zip
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.local import Local
from lifecycle.settings import load_settings
from lifecycle.settings_table import DEFAULTS

SOURCES = {
    "manage.py": "#!/usr/bin/env python\nimport sys\n",
    "django_site/__init__.py": "",
    "django_site/settings.py": "DEBUG = False\n",
    "django_site/app/views.py": "def index(request):\n    return None\n",
    "django_site/app/templates/index.html": "<h1>hi</h1>\n",
    "django_site/bin/run.sh": "#!/bin/sh\necho run\n",
}
EXECUTABLE = ("manage.py", "django_site/bin/run.sh")


def make_tree(root: Path, files: dict[str, str] = SOURCES, executable: tuple[str, ...] = EXECUTABLE) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755 if name in executable else 0o644)
    return root


def zip_path(root: Path) -> Path:
    return root / "updated_zip" / "Project_playground.zip"


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def craft_zip(path: Path, entries: dict[str, bytes], mode: int = 0o100644) -> Path:
    """A zip with exactly these entry names (zipfile keeps '..', '/' and '\\' as given on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    assert names(path) == list(entries)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "checkout")


@pytest.fixture(autouse=True)
def no_enclosing_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git must not find a repository above tmp_path, whatever machine runs the tests."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


# ------------------------------------------------------------------------------------------ determinism


def test_two_runs_give_byte_identical_zips(tree: Path, tmp_path: Path) -> None:
    first = codezip.pack_zip(tree, zip_path(tree))
    saved = zip_path(tree).read_bytes()
    zip_path(tree).unlink()
    second = codezip.pack_zip(tree, zip_path(tree))
    assert zip_path(tree).read_bytes() == saved
    assert (first.sha256, first.size, first.file_count) == (second.sha256, second.size, second.file_count)
    assert second.changed


def test_two_copies_with_other_mtimes_and_modes_give_byte_identical_zips(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "clone"
    shutil.copytree(tree, copy)
    for index, path in enumerate(sorted(p for p in copy.rglob("*") if p.is_file())):
        os.utime(path, ns=(1_000_000_000 * (index + 7), 1_700_000_000_000_000_000 + index))
    (copy / "django_site" / "settings.py").chmod(0o600)  # umask 077
    (copy / "django_site" / "app" / "views.py").chmod(0o664)  # umask 002
    (copy / "django_site" / "bin" / "run.sh").chmod(0o700)  # still executable
    (copy / "manage.py").chmod(0o775)
    assert codezip.pack_zip(tree, zip_path(tree)).sha256 == codezip.pack_zip(copy, zip_path(copy)).sha256
    assert zip_path(tree).read_bytes() == zip_path(copy).read_bytes()


def test_entries_are_sorted_with_fixed_metadata(tree: Path) -> None:
    codezip.pack_zip(tree, zip_path(tree))
    with zipfile.ZipFile(zip_path(tree)) as archive:
        infos = archive.infolist()
        assert archive.comment == b""
    assert [i.filename for i in infos] == sorted(SOURCES)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.create_system == 3
        assert info.extra == b""
        mode = info.external_attr >> 16
        assert mode == (0o100755 if info.filename in EXECUTABLE else 0o100644), info.filename


def test_the_zip_changes_when_one_source_file_changes(tree: Path) -> None:
    before = codezip.pack_zip(tree, zip_path(tree))
    (tree / "django_site" / "settings.py").write_text("DEBUG = True\n")
    after = codezip.pack_zip(tree, zip_path(tree))
    assert after.changed and after.sha256 != before.sha256


def test_making_a_file_executable_changes_the_zip(tree: Path) -> None:
    before = codezip.pack_zip(tree, zip_path(tree))
    (tree / "django_site" / "settings.py").chmod(0o744)
    assert codezip.pack_zip(tree, zip_path(tree)).sha256 != before.sha256


def test_unchanged_content_is_not_rewritten(tree: Path) -> None:
    codezip.pack_zip(tree, zip_path(tree))
    os.utime(zip_path(tree), ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = zip_path(tree).stat().st_mtime_ns
    result = codezip.pack_zip(tree, zip_path(tree))
    assert not result.changed
    assert zip_path(tree).stat().st_mtime_ns == before
    assert [p.name for p in zip_path(tree).parent.iterdir() if p.name.endswith(".tmp")] == []


# ------------------------------------------------------------------------------------------- exclusions

EXCLUDED_KINDS = [
    pytest.param("django_site/.git/HEAD", id="git data"),
    pytest.param("django_site/.hg/store", id="mercurial data"),
    pytest.param("django_site/.svn/entries", id="subversion data"),
    pytest.param("django_site/__pycache__/views.cpython-312.pyc", id="pycache folder"),
    pytest.param("django_site/stray.pyc", id="stray pyc"),
    pytest.param("django_site/stray.pyo", id="stray pyo"),
    pytest.param("django_site/.pytest_cache/v/cache", id="pytest cache"),
    pytest.param("django_site/.ruff_cache/x", id="ruff cache"),
    pytest.param("django_site/.mypy_cache/x", id="mypy cache"),
    pytest.param("django_site/.nox/s/x", id="nox folder"),
    pytest.param("django_site/.tox/s/x", id="tox folder"),
    pytest.param("django_site/.venv/bin/python", id="dot venv"),
    pytest.param("django_site/venv/bin/python", id="venv"),
    pytest.param("django_site/myenv/pyvenv.cfg", id="any folder holding pyvenv.cfg"),
    pytest.param("django_site/node_modules/x/index.js", id="node modules"),
    pytest.param("django_site/.env", id="dot env"),
    pytest.param("django_site/.env.local", id="dot env variant"),
    pytest.param("django_site/.env.example", id="dot env example"),
    pytest.param("django_site/tls/server.pem", id="pem"),
    pytest.param("django_site/tls/server.key", id="key"),
    pytest.param("django_site/tls/client.p12", id="p12"),
    pytest.param("django_site/tls/client.pfx", id="pfx"),
    pytest.param("django_site/id_rsa", id="ssh key"),
    pytest.param("django_site/id_rsa.pub", id="ssh public key"),
    pytest.param("django_site/.DS_Store", id="finder litter"),
    pytest.param("django_site/reports/junit.xml", id="reports"),
    pytest.param("django_site/staticfiles/admin/base.css", id="collected static files"),
    pytest.param("django_site/db.sqlite3", id="sqlite database"),
    pytest.param("django_site/.coverage", id="coverage data"),
    pytest.param("django_site/.coverage.host.123", id="parallel coverage data"),
]


@pytest.mark.parametrize("relative", EXCLUDED_KINDS)
def test_an_excluded_kind_is_absent(tree: Path, relative: str) -> None:
    make_tree(tree, {relative: "secret or junk\n"}, ())
    codezip.pack_zip(tree, zip_path(tree))
    assert names(zip_path(tree)) == sorted(SOURCES)


def test_a_tree_with_every_excluded_kind_zips_only_sources(tree: Path) -> None:
    make_tree(tree, {p.values[0]: "junk\n" for p in EXCLUDED_KINDS}, ())
    result = codezip.pack_zip(tree, zip_path(tree))
    assert names(zip_path(tree)) == sorted(SOURCES)
    assert result.file_count == len(SOURCES)


def test_the_zip_folder_itself_is_never_zipped(tree: Path) -> None:
    codezip.pack_zip(tree, zip_path(tree), include=(".",))
    codezip.pack_zip(tree, zip_path(tree), include=(".",))  # the first zip and manifest now sit in the tree
    assert names(zip_path(tree)) == sorted(SOURCES)


def test_a_symlink_inside_the_tree_is_stored_as_the_targets_content(tree: Path, tmp_path: Path) -> None:
    (tree / "django_site" / "alias.py").symlink_to("settings.py")
    (tree / "django_site" / "shared").symlink_to("app", target_is_directory=True)
    copy = make_tree(tmp_path / "copied")
    shutil.copy(tree / "django_site" / "settings.py", copy / "django_site" / "alias.py")
    shutil.copytree(tree / "django_site" / "app", copy / "django_site" / "shared")
    codezip.pack_zip(tree, zip_path(tree))
    codezip.pack_zip(copy, zip_path(copy))
    assert "django_site/shared/views.py" in names(zip_path(tree))
    assert zip_path(tree).read_bytes() == zip_path(copy).read_bytes()


def test_empty_folders_leave_no_entries(tree: Path) -> None:
    (tree / "django_site" / "empty").mkdir()
    codezip.pack_zip(tree, zip_path(tree))
    assert names(zip_path(tree)) == sorted(SOURCES)


def test_another_include_list(tree: Path) -> None:
    result = codezip.pack_zip(tree, zip_path(tree), include=("django_site/app", "manage.py"))
    assert names(zip_path(tree)) == ["django_site/app/templates/index.html", "django_site/app/views.py", "manage.py"]
    assert result.file_count == 3


# --------------------------------------------------------------------------------------------- refusals


def link_to_etc(root: Path) -> None:
    (root / "django_site" / "x").symlink_to("/etc", target_is_directory=True)


def link_to_outside_file(root: Path) -> None:
    outside = root.parent / "outside.txt"
    outside.write_text("not ours\n")
    (root / "django_site" / "y.txt").symlink_to(outside)


def link_escaping_by_dots(root: Path) -> None:
    (root / "django_site" / "up").symlink_to("../..", target_is_directory=True)


def broken_link(root: Path) -> None:
    (root / "django_site" / "gone.py").symlink_to("missing.py")


def link_to_env_file(root: Path) -> None:
    (root / ".env").write_text("SECRET=1\n")
    (root / "django_site" / "local.py").symlink_to("../.env")


def link_loop(root: Path) -> None:
    (root / "django_site" / "app" / "again").symlink_to("..", target_is_directory=True)


def backslash_name(root: Path) -> None:
    (root / "django_site" / "a\\b.py").write_text("x = 1\n")


def non_utf8_name(root: Path) -> None:
    try:
        with open(os.fsencode(root / "django_site") + b"/bad\xff.py", "wb") as stream:
            stream.write(b"x = 1\n")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")


def fifo(root: Path) -> None:
    os.mkfifo(root / "django_site" / "pipe")


REFUSALS = [
    pytest.param(
        link_to_etc,
        "refusing to zip django_site/x: symlink points outside the checkout (/etc); remove it or copy the file in",
        id="a symlinked folder out of the tree is refused",
    ),
    pytest.param(
        link_to_outside_file, "django_site/y.txt: symlink points outside", id="a symlink out of the tree is refused"
    ),
    pytest.param(
        link_escaping_by_dots, "django_site/up: symlink points outside", id="a relative symlink climbing out is refused"
    ),
    pytest.param(broken_link, "django_site/gone.py: symlink is broken", id="a broken symlink is refused"),
    pytest.param(
        link_to_env_file,
        "django_site/local.py: symlink points at something never zipped",
        id="a symlink to .env is refused",
    ),
    pytest.param(link_loop, "symlink loop", id="a symlink loop is refused"),
    pytest.param(backslash_name, "backslash", id="a backslash in a name is refused"),
    pytest.param(non_utf8_name, "not valid UTF-8", id="a name that is not UTF-8 is refused"),
    pytest.param(fifo, "django_site/pipe: not a regular file", id="a fifo is refused"),
]


@pytest.mark.parametrize(("spoil", "message"), REFUSALS)
def test_an_unsafe_tree_is_refused_and_nothing_is_written(
    tree: Path, spoil: Callable[[Path], None], message: str
) -> None:
    spoil(tree)
    with pytest.raises(UserError, match=None) as raised:
        codezip.pack_zip(tree, zip_path(tree))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not zip_path(tree).parent.exists()


def link_to_backups(root: Path) -> None:
    (root / "backups").mkdir()
    (root / "backups" / "project-20260101T000000Z.sql.gz").write_bytes(b"the whole database")
    (root / "django_site" / "data").symlink_to("../backups", target_is_directory=True)


def link_into_lifecycle(root: Path) -> None:
    (root / ".lifecycle" / "tls").mkdir(parents=True)
    (root / ".lifecycle" / "tls" / "ca.crt").write_text("not code\n")
    (root / "django_site" / "certs").symlink_to("../.lifecycle/tls", target_is_directory=True)


def fan_out(root: Path, levels: int = 12) -> None:
    """Each folder links twice to the next: 2**levels paths to the last one, and no loop."""
    for level in range(levels + 1):
        (root / "fan" / str(level)).mkdir(parents=True)
    (root / "fan" / str(levels) / "leaf.py").write_text("x = 1\n")
    for level in range(levels):
        for branch in ("a", "b"):
            (root / "fan" / str(level) / branch).symlink_to(f"../{level + 1}", target_is_directory=True)
    (root / "django_site" / "fan").symlink_to("../fan/0", target_is_directory=True)


DATA_AND_FAN_OUT = [
    pytest.param(
        link_to_backups,
        "refusing to zip django_site/data: symlink points at something never zipped",
        id="backups reached through a symlink are refused",
    ),
    pytest.param(
        link_into_lifecycle,
        "refusing to zip django_site/certs: symlink points at something never zipped",
        id=".lifecycle reached through a symlink is refused",
    ),
    pytest.param(
        fan_out,
        "refusing to zip django_site/fan/a: a symlinked folder inside a symlinked folder",
        id="a fan-out of symlinks is refused at the second link",
    ),
]


@pytest.mark.parametrize(("spoil", "message"), DATA_AND_FAN_OUT)
def test_the_suites_data_and_a_fan_out_of_links_are_refused(
    tree: Path, spoil: Callable[[Path], None], message: str
) -> None:
    spoil(tree)
    with pytest.raises(UserError) as raised:
        codezip.pack_zip(tree, zip_path(tree), skip=[tree / "backups"])
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert not zip_path(tree).parent.exists()


def test_backup_dir_inside_an_included_folder_is_left_out(tree: Path) -> None:
    """BACKUP_DIR comes from the settings (Local.zip passes it), wherever it points."""
    make_tree(tree, {"django_site/dumps/project-1.sql.gz": "rows\n", ".lifecycle/engine.json": "{}\n"}, ())
    settings = load_settings(root=tree, environ={"BACKUP_DIR": "django_site/dumps"})
    Local(Context(settings, run=None)).zip()
    assert names(zip_path(tree)) == sorted(SOURCES)
    assert codezip.pack_zip(tree, zip_path(tree), include=(".",), skip=[tree / "django_site/dumps"]).file_count == (
        len(SOURCES)
    )


def test_the_walk_is_bounded(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codezip, "MAX_ENTRIES", len(SOURCES))  # files and folders: more entries than that
    with pytest.raises(UserError, match=r"^refusing to zip more than 6 files and folders \(reached "):
        codezip.pack_zip(tree, zip_path(tree))
    monkeypatch.setattr(codezip, "MAX_ENTRIES", 50_000)
    assert codezip.pack_zip(tree, zip_path(tree)).file_count == len(SOURCES)


def test_a_folder_linked_once_is_still_zipped_as_its_content(tree: Path) -> None:
    (tree / "django_site" / "shared").symlink_to("app", target_is_directory=True)
    (tree / "django_site" / "app" / "alias.py").symlink_to("views.py")  # a file link inside a linked folder is fine
    codezip.pack_zip(tree, zip_path(tree))
    assert {"django_site/shared/alias.py", "django_site/shared/views.py"} <= set(names(zip_path(tree)))


BAD_INCLUDES = [
    pytest.param(("manage.py", "missing_app"), "'missing_app' does not exist", id="a missing include entry is refused"),
    pytest.param(("/etc",), "must be a relative path", id="an absolute include entry is refused"),
    pytest.param(("../elsewhere",), "leaves the checkout", id="an include entry climbing out is refused"),
    pytest.param(("django_site\\app",), "forward slashes", id="an include entry with backslashes is refused"),
    pytest.param((".env",), "excluded from the zip by policy", id="an excluded include entry is refused"),
]


@pytest.mark.parametrize(("include", "message"), BAD_INCLUDES)
def test_a_bad_include_list_is_refused(tree: Path, include: tuple[str, ...], message: str) -> None:
    (tree / ".env").write_text("SECRET=1\n")
    with pytest.raises(UserError) as raised:
        codezip.pack_zip(tree, zip_path(tree), include=include)
    assert message in str(raised.value)
    assert not zip_path(tree).parent.exists()


# --------------------------------------------------------------------------------------------- manifest


def test_the_manifest_lists_files_and_hashes_and_has_no_commit_outside_git(tree: Path) -> None:
    result = codezip.pack_zip(tree, zip_path(tree))
    assert result.manifest_path == zip_path(tree).parent / "Project_playground.manifest.json"
    text = result.manifest_path.read_text()
    manifest = json.loads(text)
    assert manifest["zip"] == "Project_playground.zip"
    assert manifest["sha256"] == result.sha256 == hashlib.sha256(zip_path(tree).read_bytes()).hexdigest()
    assert manifest["file_count"] == len(SOURCES)
    assert manifest["total_size"] == sum(len(t.encode()) for t in SOURCES.values())
    assert manifest["files"] == [
        {"path": name, "sha256": hashlib.sha256(SOURCES[name].encode()).hexdigest(), "size": len(SOURCES[name])}
        for name in sorted(SOURCES)
    ]
    assert manifest["commit"] is None and manifest["dirty"] is None
    assert text == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert "Project_playground.manifest.json" not in " ".join(names(zip_path(tree)))


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run([*command, *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_manifest_records_the_commit_and_the_dirty_flag(tree: Path) -> None:
    git(tree, "init", "--quiet")
    (tree / ".gitignore").write_text("updated_zip/\n")
    git(tree, "add", "--all")
    git(tree, "commit", "--quiet", "-m", "tree")
    head = git(tree, "rev-parse", "HEAD")

    clean = json.loads(codezip.pack_zip(tree, zip_path(tree)).manifest_path.read_text())
    assert (clean["commit"], clean["dirty"]) == (head, False)

    (tree / "README.md").write_text("not included, so not dirty\n")
    assert json.loads(codezip.pack_zip(tree, zip_path(tree)).manifest_path.read_text())["dirty"] is False

    (tree / "django_site" / "settings.py").write_text("DEBUG = True\n")
    dirty = json.loads(codezip.pack_zip(tree, zip_path(tree)).manifest_path.read_text())
    assert (dirty["commit"], dirty["dirty"]) == (head, True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_new_commit_of_the_same_tree_keeps_the_zip_and_updates_the_manifest(tree: Path) -> None:
    git(tree, "init", "--quiet")
    git(tree, "add", "--all")
    git(tree, "commit", "--quiet", "-m", "one")
    first = codezip.pack_zip(tree, zip_path(tree))
    git(tree, "commit", "--quiet", "--allow-empty", "-m", "two")
    second = codezip.pack_zip(tree, zip_path(tree))
    assert not second.changed and second.sha256 == first.sha256
    assert json.loads(second.manifest_path.read_text())["commit"] == git(tree, "rev-parse", "HEAD")


def test_the_summary_line(tree: Path) -> None:
    result = codezip.pack_zip(tree, zip_path(tree))
    line = codezip.summary(result, tree)
    assert line.startswith(f"updated_zip/Project_playground.zip: {len(SOURCES)} files, ")
    assert f"sha256 {result.sha256}" in line and "\n" not in line
    assert str(zip_path(tree)) in codezip.summary(result)


def test_the_zip_folder_is_created_and_a_file_in_its_way_is_a_user_error(tree: Path) -> None:
    (tree / "blocked").write_text("a file, not a folder\n")
    with pytest.raises(UserError, match="cannot write"):
        codezip.pack_zip(tree, tree / "blocked" / "Project_playground.zip")
    result = codezip.pack_zip(tree, tree / "deep" / "er" / "code.zip")
    assert result.path.is_file() and (tree / "deep" / "er" / "code.manifest.json").is_file()


# ------------------------------------------------------------------------------------------------ checks


def stale_missing(root: Path) -> None:
    zip_path(root).unlink()


def stale_corrupt(root: Path) -> None:
    zip_path(root).write_bytes(zip_path(root).read_bytes()[:40])


def stale_changed(root: Path) -> None:
    (root / "django_site" / "app" / "views.py").write_text("changed = True\n")


def stale_new_file(root: Path) -> None:
    (root / "django_site" / "new.py").write_text("")


def current(root: Path) -> None:
    (root / "django_site" / "__pycache__").mkdir()
    (root / "django_site" / "__pycache__" / "x.pyc").write_bytes(b"excluded, so no change")


STALENESS = [
    pytest.param(stale_missing, True, id="a missing zip is stale"),
    pytest.param(stale_corrupt, True, id="a corrupt zip is stale"),
    pytest.param(stale_changed, True, id="a changed source makes the zip stale"),
    pytest.param(stale_new_file, True, id="a new source makes the zip stale"),
    pytest.param(current, False, id="a zip of the current tree is not stale"),
]


@pytest.mark.parametrize(("change", "stale"), STALENESS)
def test_is_stale(tree: Path, change: Callable[[Path], None], stale: bool) -> None:
    codezip.pack_zip(tree, zip_path(tree))
    change(tree)
    assert codezip.is_stale(tree, zip_path(tree)) is stale


def good_zip(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "src")
    return codezip.pack_zip(root, zip_path(root)).path


def truncated_zip(tmp_path: Path) -> Path:
    path = good_zip(tmp_path)
    path.write_bytes(path.read_bytes()[:-30])
    return path


def bad_crc_zip(tmp_path: Path) -> Path:
    path = tmp_path / "crc.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("django_site/a.py", b"A" * 64)
    data = bytearray(path.read_bytes())
    offset = data.index(b"A" * 64)
    data[offset] = ord("B")
    path.write_bytes(bytes(data))
    return path


def not_a_zip(tmp_path: Path) -> Path:
    path = tmp_path / "text.zip"
    path.write_text("just text\n")
    return path


VERIFY = [
    pytest.param(lambda t: t / "nope.zip", "does not exist; run `invoke zip` first", id="a missing zip"),
    pytest.param(truncated_zip, "is corrupt", id="a truncated zip is corrupt"),
    pytest.param(bad_crc_zip, "is corrupt (bad CRC in django_site/a.py)", id="a failing CRC is corrupt"),
    pytest.param(not_a_zip, "run `invoke zip` to rebuild it", id="a file that is not a zip is corrupt"),
    pytest.param(
        lambda t: craft_zip(t / "t.zip", {"ok.py": b"", "../evil": b"x"}),
        "entry ../evil would land outside the app folder (.. component); rebuild the zip with `invoke zip`",
        id="a traversal entry",
    ),
    pytest.param(lambda t: craft_zip(t / "a.zip", {"/etc/passwd": b"x"}), "(absolute path)", id="an absolute entry"),
    pytest.param(lambda t: craft_zip(t / "d.zip", {"C:/x": b"x"}), "(drive letter)", id="a drive letter entry"),
    pytest.param(
        lambda t: craft_zip(t / "b.zip", {"..\\evil": b"x"}), "(backslash in the name)", id="a backslash entry"
    ),
    pytest.param(
        lambda t: craft_zip(t / "l.zip", {"link": b"/etc/passwd"}, mode=0o120777),
        "entry link is a symlink",
        id="a symlink entry",
    ),
]


@pytest.mark.parametrize(("make", "message"), VERIFY)
def test_the_zip_rule_refuses(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    """The one rule (lifecycle/unpack_zip.py, imported by codezip) that the image build applies."""
    problem = unpack_zip.zip_problem(make(tmp_path))
    assert problem is not None and message in problem
    assert "\n" not in problem


def test_the_zip_rule_accepts_a_packed_zip(tmp_path: Path) -> None:
    assert unpack_zip.zip_problem(good_zip(tmp_path)) is None


# ------------------------------------------------------------------------------------------------ policy

POLICY = [
    pytest.param("django_site/views.py", False, id="python source is kept"),
    pytest.param("django_site/report.py", False, id="a file merely named like reports is kept"),
    pytest.param("django_site/environment.py", False, id="a name starting with env is kept"),
    pytest.param("django_site/.envrc", False, id="direnv file is kept"),
    pytest.param("django_site/keys.py", False, id="a python file about keys is kept"),
    pytest.param("django_site/.env", True, id="dot env is dropped"),
    pytest.param("django_site/cert.pem", True, id="a certificate is dropped"),
    pytest.param("django_site/__pycache__", True, id="pycache is dropped"),
]


@pytest.mark.parametrize(("relative", "dropped"), POLICY)
def test_the_exclusion_policy(tmp_path: Path, relative: str, dropped: bool) -> None:
    assert codezip.excluded(tmp_path / relative) is dropped


def test_the_entry_rule_is_the_one_in_lifecycle_unpack_zip() -> None:
    assert Path(unpack_zip.__file__).parent == Path(codezip.__file__).parent
    assert codezip.unsafe_reason is unpack_zip.unsafe_reason


def test_the_suites_data_folders_stay_out_of_the_build_context() -> None:
    """The engine gets the checkout as build context: backups and .lifecycle (CA key, engine state) stay out."""
    ignored = (Path(__file__).resolve().parents[2] / ".dockerignore").read_text().splitlines()
    assert {DEFAULTS["BACKUP_DIR"], *codezip.SUITE_FOLDERS, "reports"} <= set(ignored)
