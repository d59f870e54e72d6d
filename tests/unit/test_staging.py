"""Staging what a build reads (lifecycle/staging.py): exactly the wanted files, atomically, and two builds of one
checkout at once never fail on each other's files (a cold two-worker e2e run did: one build's rmtree of the staged
tests under the other's)."""

from __future__ import annotations

import threading

from lifecycle import projectlock, staging


def test_mirror_writes_what_changed_and_removes_the_rest_with_its_empty_folders(tmp_path):
    (tmp_path / "old" / "deep").mkdir(parents=True)
    (tmp_path / "old" / "deep" / "gone.py").write_text("x")
    (tmp_path / "kept.py").write_text("same")
    (tmp_path / ".other.py.1234.tmp").write_text("another build's file being written")
    written = staging.mirror({"kept.py": b"same", "pkg/new.py": b"new"}, tmp_path)
    assert written == ["pkg/new.py"]
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [".other.py.1234.tmp", "kept.py", "pkg/new.py"]
    assert not (tmp_path / "old").exists()


def test_mirror_only_touches_what_its_pattern_matches(tmp_path):
    (tmp_path / "README.md").write_text("kept")
    (tmp_path / "stale.crt").write_text("old")
    staging.mirror({"ca.crt": b"new"}, tmp_path, "*.crt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "ca.crt"]


def test_two_builds_of_one_checkout_stage_its_tests_at_once(tmp_path):
    code = tmp_path / "src"
    for number in range(40):
        (code / "tests" / f"t{number // 10}").mkdir(parents=True, exist_ok=True)
        (code / "tests" / f"t{number // 10}" / f"test_{number}.py").write_text(f"def test_{number}(): pass\n")
    (code / "tests" / "__pycache__").mkdir()
    (code / "tests" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    errors: list[BaseException] = []

    def build() -> None:
        try:
            for _ in range(30):
                projectlock.stage_tests(tmp_path, code, ["tests"])
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    builds = [threading.Thread(target=build) for _ in range(2)]
    for thread in builds:
        thread.start()
    for thread in builds:
        thread.join()
    assert errors == []
    staged = tmp_path / projectlock.TESTS_DIR
    assert len(list(staged.rglob("test_*.py"))) == 40 and not list(staged.rglob("__pycache__"))
    assert not list(staged.rglob("*.tmp"))
