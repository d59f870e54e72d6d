"""lifecycle/unpack_zip.py, the script the Dockerfile runs: run here as a subprocess on real zips."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lifecycle import codezip, unpack_zip
from lifecycle.settings import ROOT

SCRIPT = ROOT / "lifecycle" / "unpack_zip.py"


def unpack(zip_file: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(zip_file), str(dest)], capture_output=True, text=True, check=False
    )


def craft_zip(path: Path, entries: dict[str, bytes], mode: int = 0o100644) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


def packed(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    files = {"manage.py": "#!/usr/bin/env python\n", "django_site/settings.py": "X = 1\n", "django_site/a/b.txt": "b\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        (root / name).chmod(0o600)
    (root / "manage.py").chmod(0o700)
    return codezip.pack_zip(root, root / "updated_zip" / "code.zip").path


def test_a_good_zip_extracts_with_modes(tmp_path: Path) -> None:
    dest = tmp_path / "image" / "app" / "project"
    done = unpack(packed(tmp_path), dest)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (dest / "manage.py").read_text() == "#!/usr/bin/env python\n"
    assert (dest / "django_site" / "a" / "b.txt").read_text() == "b\n"
    assert (dest / "manage.py").stat().st_mode & 0o777 == 0o755
    assert (dest / "django_site" / "settings.py").stat().st_mode & 0o777 == 0o644
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "django_site/a/b.txt",
        "django_site/settings.py",
        "manage.py",
    ]


def test_extracting_over_an_existing_app_folder_replaces_files(tmp_path: Path) -> None:
    dest = tmp_path / "app"
    (dest / "django_site").mkdir(parents=True)
    (dest / "django_site" / "settings.py").write_text("old\n")
    assert unpack(packed(tmp_path), dest).returncode == 0
    assert (dest / "django_site" / "settings.py").read_text() == "X = 1\n"


BAD = [
    pytest.param({"ok.py": b"fine", "../evil": b"x"}, 0o100644, ".. component", id="a traversal entry"),
    pytest.param({"a/../../evil": b"x"}, 0o100644, ".. component", id="a traversal entry in the middle"),
    pytest.param({"/tmp/evil": b"x"}, 0o100644, "absolute path", id="an absolute entry"),
    pytest.param({"..\\evil": b"x"}, 0o100644, "backslash", id="a backslash entry"),
    pytest.param({"C:/evil": b"x"}, 0o100644, "drive letter", id="a drive letter entry"),
    pytest.param({"evil": b"/etc/passwd"}, 0o120777, "symlink", id="a symlink entry"),
]


@pytest.mark.parametrize(("entries", "mode", "reason"), BAD)
def test_an_unsafe_zip_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, entries: dict[str, bytes], mode: int, reason: str
) -> None:
    outer = tmp_path / "out"
    dest = outer / "app"
    done = unpack(craft_zip(tmp_path / "bad.zip", entries, mode), dest)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and reason in done.stderr
    assert "rebuild the zip with `invoke zip`" in done.stderr
    assert not outer.exists()


def test_a_missing_zip_exits_2(tmp_path: Path) -> None:
    done = unpack(tmp_path / "nope.zip", tmp_path / "app")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"unpack_zip: {tmp_path / 'nope.zip'} does not exist; run `invoke zip` first"]
    assert not (tmp_path / "app").exists()


def test_a_corrupt_zip_exits_2(tmp_path: Path) -> None:
    path = packed(tmp_path)
    path.write_bytes(path.read_bytes()[:-25])
    done = unpack(path, tmp_path / "app")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "is corrupt" in done.stderr
    assert not (tmp_path / "app").exists()


def test_wrong_arguments_exit_2(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.splitlines() == ["usage: unpack_zip.py ZIPFILE DEST"]


UNSAFE_REASONS = [
    pytest.param("django_site/settings.py", None, id="a plain relative path is safe"),
    pytest.param("django_site/", None, id="a folder entry is safe"),
    pytest.param("a/..b/c..", None, id="dots inside a name are safe"),
    pytest.param("../x", ".. component", id="a leading .. is unsafe"),
    pytest.param("a/../../x", ".. component", id="an inner .. is unsafe"),
    pytest.param("a/..", ".. component", id="a trailing .. is unsafe"),
    pytest.param("/etc/passwd", "absolute path", id="an absolute path is unsafe"),
    pytest.param("c:x", "drive letter", id="a drive letter is unsafe"),
    pytest.param("a\\b", "backslash in the name", id="a backslash is unsafe"),
    pytest.param("a\0b", "NUL byte in the name", id="a NUL byte is unsafe"),
    pytest.param("", "empty name", id="an empty name is unsafe"),
]


@pytest.mark.parametrize(("name", "reason"), UNSAFE_REASONS)
def test_unsafe_reason(name: str, reason: str | None) -> None:
    assert unpack_zip.unsafe_reason(name) == reason
