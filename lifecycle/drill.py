"""Restore drills: the newest backup restored into a throwaway database server, checked, timed, removed.

The throwaway server is the stack's own `db` service under a compose project of its own (`<project>-drill`): its
own container, network and volume, the same image and secret files; nothing of the running stack is touched (it
need not even run). The backup is verified end to end, loaded as the restore's fenced account (the path a real
restore takes), its row counts checked against the manifest; then `migrate --check` runs in the checkout's prod
image against it. The time from an empty server to a checked copy is the restore time a user would face.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.backup import Database
from lifecycle.backup_file import PHYSICAL, Manifest, check_file, read_manifests
from lifecycle.commands import compose, dbclient, docker
from lifecycle.errors import UserError
from lifecycle.restore import Restore, count_mismatches
from lifecycle.stages import PROD

SUFFIX = "-drill"


def newest(backups: Sequence[tuple[Path, Manifest | None]], project: str) -> tuple[Path, Manifest]:
    """The newest backup of this project that has a manifest (read_manifests lists newest first)."""
    for path, manifest in backups:
        if manifest is not None and manifest.project == project:
            return path, manifest
    raise UserError(f"no backup of {project} to drill with; take one with invoke db.backup")


def verdict(passed: bool, name: str, seconds: float, checks: Sequence[str]) -> str:
    """The drill's last line: pass or fail, the backup, the restore time, what was checked."""
    return f"drill {'PASSED' if passed else 'FAILED'}: {name} restored in {seconds:.1f} s; {'; '.join(checks)}"


@dataclass
class Drill:
    db: Database  # the stack's: its settings, folder and edges; its server is never used

    def run(self, path: Path | None = None) -> str:
        """Run the drill on `path` (default: the newest local backup); return the verdict line (UserError, with the
        verdict, when it failed)."""
        stack = self.db.settings
        if path is None:
            path, _ = newest(read_manifests(self.db.folder) if self.db.folder.is_dir() else [], stack.project_name)
        if self.db.dry:
            self.db.say(f"dry run: would restore {path.name} into a throwaway server ({stack.project_name}{SUFFIX}), "
                        "check it, run migrate --check, remove it")  # fmt: skip
            return ""
        manifest = check_file(path)
        if manifest.method == PHYSICAL:
            return self._physical(path, manifest)
        settings = stack.override(COMPOSE_PROJECT_NAME=f"{stack.project_name}{SUFFIX}")
        throwaway = Database(self.db.ctx.with_settings(settings))
        env, run = settings.env, self.db.run
        checks: list[str] = []
        try:
            self._down(settings)  # a drill killed earlier left its server: start from nothing
            run(compose.compose_argv(settings, "up", "--detach", "--wait", dbclient.SERVICE), env=env)
            started = time.monotonic()
            try:
                Restore(throwaway).load_fenced(path, throwaway.tools().database, manifest)
                Restore(throwaway).check_copy(throwaway.tools().database, manifest)
            except UserError as error:
                raise UserError(verdict(False, path.name, time.monotonic() - started, [str(error)])) from None
            seconds = time.monotonic() - started
            checks.append(f"{len(manifest.tables)} tables, {manifest.rows} rows as its manifest says")
            passed = self._migrate_check(settings, checks)
        finally:
            self._down(settings)
        line = verdict(passed, path.name, seconds, checks)
        if not passed:
            raise UserError(line)
        return line

    def _physical(self, path: Path, manifest: Manifest) -> str:
        """A physical backup's drill: the restore's own proof (unpacked, prepared and served in a throwaway volume,
        its counts checked). migrate --check needs the app to connect to it, which the throwaway server (no network,
        no accounts) does not allow: the backup's migrations are in its manifest."""
        from lifecycle.physical import Physical  # loaded for a physical backup only

        started = time.monotonic()
        try:
            with Physical(self.db).prepared(path, manifest.sha256, Physical(self.db).image()) as copy:
                wrong = count_mismatches(manifest.tables, copy.count(manifest.database))
        except UserError as error:
            raise UserError(verdict(False, path.name, time.monotonic() - started, [str(error)])) from None
        seconds = time.monotonic() - started
        if wrong:
            raise UserError(verdict(False, path.name, seconds, [f"counts differ: {'; '.join(wrong[:3])}"]))
        checks = [f"physical: prepared, {len(manifest.tables)} tables, {manifest.rows} rows as its manifest says",
                  "migrate --check skipped (a physical copy serves no network)"]  # fmt: skip
        return verdict(True, path.name, seconds, checks)

    def _migrate_check(self, settings, checks: list[str]) -> bool:
        """`migrate --check` in the image of the code the database serves (the checkout's prod image, or the release
        the swarm stack runs), tagged for the drill's project while it runs."""
        image, run, env = self.db.app_image(), self.db.run, settings.env
        if not run(docker.docker_argv("image", "inspect", image), warn=True, capture=True).ok:
            checks.append(f"migrate --check skipped: no {image} image (invoke build --stage prod)")
            return True
        alias = settings.image(PROD)
        run(docker.docker_argv("tag", image, alias), env=env)
        try:
            argv = compose.compose_argv(settings, "run", "--rm", "--no-deps", "--env", "DJANGO_MIGRATE=false",
                                        PROD.service, "python", "manage.py", "migrate", "--check")  # fmt: skip
            ok = run(argv, env=env, warn=True).ok
        finally:
            run(docker.docker_argv("image", "rm", alias), env=env, warn=True, capture=True)  # the tag only
        checks.append(f"migrate --check with {image}: {'no migration missing' if ok else 'FAILED (see above)'}")
        return ok

    def _down(self, settings) -> None:
        self.db.run(compose.compose_argv(settings, "down", "--volumes", "--remove-orphans"), env=settings.env,
                    warn=True)  # fmt: skip
