"""`invoke up --stage dev --watch`: what a change means, and the loop around it (the engine: test_daily_use.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from lifecycle import devwatch
from lifecycle.context import Clock
from lifecycle.errors import UserError
from lifecycle.stages import Stage

LOCKS = ["requirements/runtime.txt", "requirements/test.txt"]


@pytest.mark.parametrize(
    ("before", "after", "locks", "migrations"),
    [
        pytest.param({}, {}, [], [], id="nothing"),
        pytest.param({LOCKS[0]: (1, 10)}, {LOCKS[0]: (2, 10)}, [LOCKS[0]], [], id="lock-saved"),
        pytest.param({LOCKS[0]: (1, 10)}, {}, [LOCKS[0]], [], id="lock-removed"),
        pytest.param({}, {LOCKS[1]: (1, 1)}, [LOCKS[1]], [], id="lock-added"),
        pytest.param({}, {"app/migrations/0002_x.py": (1, 1)}, [], ["app/migrations/0002_x.py"], id="new-migration"),
        pytest.param({"app/migrations/0001_x.py": (1, 1)}, {"app/migrations/0001_x.py": (2, 3)}, [], [], id="edited"),
        pytest.param({"app/migrations/0001_x.py": (1, 1)}, {}, [], [], id="migration-removed"),
    ],
)
def test_changes(before, after, locks, migrations):
    assert devwatch.changes(before, after, LOCKS) == devwatch.Changes(locks, migrations)


def test_only_numbered_migration_modules_under_the_code_count(tmp_path):
    for name in ("site/notes/migrations/0001_initial.py", "site/notes/migrations/__init__.py",
                 "site/notes/views.py", "other/migrations/0001_x.py"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    found = devwatch.migration_files(tmp_path, ["site", "manage.py"])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == ["site/notes/migrations/0001_initial.py"]


@pytest.mark.parametrize("stage", ["test-qa", "stage", "prod"])
def test_watch_is_for_dev_only(stage):
    with pytest.raises(UserError, match=r"--watch .* use --stage dev"):
        devwatch.check_stage(Stage.parse(stage))


@dataclass
class FakeSuite:
    """The loop's edge: what `up` and the migrate command would do, recorded; each sleep runs one edit."""

    settings: object
    edits: list
    said: list = field(default_factory=list)
    ran: list = field(default_factory=list)
    ups: int = 0
    dry: bool = False
    up_fails: bool = False

    def __post_init__(self):
        self.ctx = SimpleNamespace(clock=Clock(now=lambda: 0.0, sleep=lambda _: self.edits and self.edits.pop(0)()))

    def say(self, message: str) -> None:
        self.said.append(message)

    def up(self, stage) -> None:
        self.ups += 1
        if self.up_fails:
            raise UserError("dev did not come up healthy")

    def run(self, argv, **options):
        self.ran.append(argv)
        return SimpleNamespace(ok=True)


def checkout(make_settings, tmp_path: Path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "runtime.txt").write_text("django==5.2\n")
    (tmp_path / "django_site" / "notes" / "migrations").mkdir(parents=True)
    return make_settings(tmp_path)


def test_a_new_migration_is_applied_and_a_lock_change_brings_dev_up_again(make_settings, tmp_path):
    settings = checkout(make_settings, tmp_path)
    migration = tmp_path / "django_site" / "notes" / "migrations" / "0002_more.py"
    lock = tmp_path / "requirements" / "runtime.txt"
    edits = [lambda: migration.write_text("x\n"), lambda: None, lambda: lock.write_text("django==5.2.1\n")]
    suite = FakeSuite(settings, edits)
    devwatch.Watcher(suite, Stage.parse("dev")).run(interval=0, rounds=3)
    (migrate,) = suite.ran
    assert migrate[-5:] == ["dev", *devwatch.MIGRATE] and "--no-TTY" in migrate
    assert suite.ups == 1
    assert any(line.startswith("new migration django_site/notes/migrations/0002_more.py") for line in suite.said)
    assert any(line.startswith("requirements/runtime.txt changed: rebuilding dev") for line in suite.said)


def test_a_failed_rebuild_is_said_and_the_watch_goes_on(make_settings, tmp_path):
    settings = checkout(make_settings, tmp_path)
    lock = tmp_path / "requirements" / "runtime.txt"
    suite = FakeSuite(settings, [lambda: lock.write_text("broken\n")], up_fails=True)
    devwatch.Watcher(suite, Stage.parse("dev")).run(interval=0, rounds=2)
    assert any("the rebuild failed: dev did not come up healthy" in line for line in suite.said)


def test_an_interrupt_stops_watching_and_leaves_dev_alone(make_settings, tmp_path):
    def interrupt():
        raise KeyboardInterrupt

    suite = FakeSuite(checkout(make_settings, tmp_path), [interrupt])
    devwatch.Watcher(suite, Stage.parse("dev")).run(interval=0)
    assert suite.said[-1].startswith("stopped watching; dev runs as up left it") and suite.ups == 0
