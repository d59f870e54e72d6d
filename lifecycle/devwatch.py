"""`invoke up --stage dev --watch`: the rest of the inner loop once `up` has started dev.

dev bind-mounts the checkout and runserver reloads, so a saved `.py` is served already. What the bind mount cannot
do is watched here: a changed dependency lock (REQUIREMENTS, REQUIREMENTS_TEST) rebuilds the dev image and
recreates the service (`up` again: the suite's build stages the locks first, which `docker compose watch`'s own
rebuild would skip, building the old ones); a new migration file under the code's `migrations/` folders is applied
in the running container. Ctrl-C or SIGTERM stops watching and leaves the stack as `up` left it. Nothing reads
stdin, so it runs without a terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.commands import compose
from lifecycle.errors import EXPECTED_FAILURES, UserError
from lifecycle.stages import DEV, Stage

WATCH_INTERVAL_S = 1.0
MIGRATE = ("python", "manage.py", "migrate", "--noinput")
# A file's state as the loop compares it: (modification time in ns, size).
Snapshot = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class Changes:
    locks: list[str]  # dependency locks changed, added or removed: rebuild
    migrations: list[str]  # new migration files: apply


def check_stage(stage: Stage) -> None:
    if stage != DEV:
        raise UserError(f"--watch follows the dev server's inputs; {stage} has no bind mount: use --stage dev")


def migration_files(code_root: Path, code: Iterable[str]) -> list[Path]:
    """The numbered migration modules under the code zip's folders (`*/migrations/0001_x.py`)."""
    found: list[Path] = []
    for entry in code:
        folder = code_root / entry
        if folder.is_dir():
            found += [path for path in folder.rglob("migrations/[0-9]*.py") if path.is_file()]
    return found


def snapshot(root: Path, paths: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """Each existing path (relative to root) with its modification time and size."""
    state = {}
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between the listing and now: absent
        state[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return state


def changes(before: Snapshot, after: Snapshot, locks: Sequence[str]) -> Changes:
    """What to do about the difference between two snapshots: locks that changed in any way, migrations that are new
    (an edited or removed one is the developer's to handle: `invoke manage migrate` says what Django thinks)."""
    changed = sorted(name for name in {*before, *after} if name in locks and before.get(name) != after.get(name))
    new = sorted(name for name in after if name not in locks and name not in before)
    return Changes(changed, new)


class Watcher:
    """The loop: the `suite` (lifecycle.local.Local) brings dev up again and runs the migrations."""

    def __init__(self, suite, stage: Stage, up: Callable[[], object] | None = None):
        """`up`: how to bring dev up again (with the task's --debug); the suite's plain `up` when None."""
        check_stage(stage)
        self.suite, self.stage = suite, stage
        self.up = up or (lambda: suite.up(stage))
        settings = suite.settings
        self.root = settings.root
        self.locks = [*settings.typed("REQUIREMENTS"), *settings.typed("REQUIREMENTS_TEST")]
        self.code_root, self.code = settings.code_root, settings.code_include

    def state(self) -> dict[str, tuple[int, int]]:
        paths = [self.root / name for name in self.locks] + migration_files(self.code_root, self.code)
        return snapshot(self.root, paths)

    def run(self, interval: float = WATCH_INTERVAL_S, rounds: int | None = None) -> None:
        """Watch until Ctrl-C or SIGTERM (or `rounds` checks, for tests); each change handled before the next."""
        say = self.suite.say
        if self.suite.dry:
            say(f"dry run: would watch {', '.join(self.locks)} and the migrations folders")
            return
        say(f"watching {', '.join(self.locks)} (rebuild) and new migrations (migrate); "
            "Ctrl-C stops watching, dev keeps running")  # fmt: skip
        seen = self.state()
        try:
            while rounds is None or rounds > 0:
                rounds = None if rounds is None else rounds - 1
                self.suite.ctx.clock.sleep(interval)
                now = self.state()
                found = changes(seen, now, self.locks)
                if found.locks:
                    self.rebuild(found.locks)
                    now = self.state()
                elif found.migrations:
                    self.migrate(found.migrations)
                seen = now
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as Terminated
            say("stopped watching; dev runs as up left it (invoke down stops it)")

    def rebuild(self, locks: Sequence[str]) -> None:
        """`up` again: the build stages the locks and rebuilds, compose recreates dev on the new image, and its
        entrypoint applies the migrations. A failure (a broken lock) is said; the loop goes on with dev as it was."""
        self.suite.say(f"{', '.join(locks)} changed: rebuilding dev and recreating it")
        try:
            self.up()
        except EXPECTED_FAILURES as error:
            self.suite.say(f"the rebuild failed: {error}; fix it and save again (still watching)")

    def migrate(self, new: Sequence[str]) -> None:
        say, settings = self.suite.say, self.suite.settings
        say(f"new migration {', '.join(new)}: applying it")
        argv = compose.exec_argv(settings, self.stage, MIGRATE, tty=False)
        if not self.suite.run(argv, env=settings.env, warn=True).ok:
            say("the migration failed (output above); fix it, then run: invoke manage migrate")
