"""Restoring a backup into the app database, never leaving it half-done.

A restore checks the backup's sha256 and whole gzip stream first, loads it into a scratch database as a temporary
account whose rights reach nothing else, checks its row counts against the manifest, then swaps it in with one
RENAME TABLE statement (atomic in MariaDB and MySQL): killed at any point before the swap, the previous data is still
there. Then the migrations the running code has and the backup lacks. A failure says whether the live database
changed, checked, never assumed. Point-in-time restores (lifecycle/pitr.py) and drills (lifecycle/drill.py) reuse
these steps.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle import media
from lifecycle.backup import Database, RunningApp
from lifecycle.backup_file import OBJECTS_REFUSED, PHYSICAL, SUFFIX, Manifest, check_file, checked_dump
from lifecycle.commands import dbclient
from lifecycle.commands.sql import (
    count_rows_sql,
    drop_restore_account_sql,
    restore_account_sql,
    sql_identifier,
    sql_string,
    swap_sql,
)
from lifecycle.confirm import confirm_project
from lifecycle.context import Context, UsesContext
from lifecycle.errors import UserError
from lifecycle.pipeline import in_background
from lifecycle.runner import CommandFailed


# -------------------------------------------------------------------------------------- plain decisions
def count_mismatches(expected: Mapping[str, int], found: Mapping[str, int]) -> list[str]:
    names = sorted(set(expected) | set(found))
    return [f"{name}: {found.get(name, 'missing')} rows, manifest {expected.get(name, 'none')}"
            for name in names if expected.get(name) != found.get(name)]  # fmt: skip


def planned_migrations(plan_output: str) -> list[str]:
    """The `app.migration` lines of `manage.py migrate --plan` (empty when the schema is current)."""
    return re.findall(r"^\s*([A-Za-z_][\w]*\.\d{4}\w*)\s*$", plan_output, flags=re.MULTILINE)


# ------------------------------------------------------------------------------------------ the steps
@dataclass
class Restore(UsesContext):
    """The restore steps over one `Database` (its context, its queries)."""

    db: Database

    @property
    def ctx(self) -> Context:  # type: ignore[override]
        return self.db.ctx

    def restore(
        self, path: Path, *, yes: bool, ask, other_database: bool = False, no_backup: bool = False,
        no_migrate: bool = False,
    ) -> list[str]:  # fmt: skip
        """Replace the database with a verified backup, then apply the migrations the running code has and the
        backup lacks (unless no_migrate); return the migrations the schema still lacks.

        The dump loads as a temporary account whose rights cover the scratch database only, so a statement in it
        that names another database or a global right fails; a failed restore says whether the live database is
        unchanged only after comparing it with how it was before (tables, checksums, accounts)."""
        manifest = check_file(path)  # the rest is checked as it loads into the scratch database (checked_dump)
        if manifest.method == PHYSICAL:  # its own steps: a prepared copy swapped into the data volume
            from lifecycle.physical import Physical  # physical builds on this module

            return Physical(self.db).restore(path, yes=yes, ask=ask, no_backup=no_backup, no_migrate=no_migrate)
        if self.dry:
            self.say(f"dry run: would take a safety backup, load {path.name} into a scratch database, swap it in"
                     f"{'' if no_migrate else ', apply the migrations it lacks'}")  # fmt: skip
            return []
        self.db.require_running()
        tools = self.db.tools()
        if manifest.database != tools.database and not other_database:
            raise UserError(
                f"{path.name} is a backup of database {manifest.database!r}, this stack's is {tools.database!r}; "
                "add --other-database to restore it anyway (nothing was changed)"
            )
        confirm_project(self.settings.project_name, f"restoring replaces the database {tools.database}", yes, ask)
        safety = self.db.safety_backup(f"before db.restore of {path.name}", skip=no_backup)
        live, scratch, replaced = tools.database, f"{tools.database}__restore", f"{tools.database}__replaced"
        files = self._restored_media(manifest)
        before = self.fingerprint(live)
        self.db.recreate(scratch, like=live)
        try:
            self.load_fenced(path, scratch, manifest)
            self.check_copy(scratch, manifest)
            if files:  # a new set beside the live one, every file checked; swapped right after the tables
                files.stage(path, manifest.media, path.name.removesuffix(SUFFIX))
            new_tables = self.base_tables(scratch)
            self.db.query(swap_sql(live, scratch, replaced, self.base_tables(live), new_tables))
        except UserError as error:
            self._drop_staged(scratch, files, path)
            raise UserError(f"{error}; {self.compare_with(live, before, safety)}") from None
        except BaseException:
            self._drop_staged(scratch, files, path)
            raise
        self.say(f"restored {path.name}: {len(manifest.tables)} tables, {manifest.rows} rows into {live}")
        if files:
            files.swap(path.name.removesuffix(SUFFIX), len(manifest.media["files"]))  # type: ignore[arg-type]
        return self.migrate_after_restore(no_migrate)

    def _drop_staged(self, scratch: str, files: media.Media | None, path: Path) -> None:
        """A failed restore's clean-up: the scratch database, and the media set staged beside the live one."""
        self.db.query(f"DROP DATABASE IF EXISTS {sql_identifier(scratch)}", warn=True)
        if files:
            files.discard(path.name.removesuffix(SUFFIX))

    def _restored_media(self, manifest: Manifest) -> media.Media | None:
        """The media volume a restore swaps too: when MEDIA is on and the backup carries media (else say why not)."""
        files = media.Media(self.ctx)
        count = len(manifest.media.get("files") or {})  # type: ignore[arg-type]
        if files.on and manifest.media:
            return files
        if manifest.media:
            self.say(f"the backup carries {count} media file(s); MEDIA is off here: only the database is restored")
        elif files.on:
            self.say("the backup carries no media (made without MEDIA): the media volume is left as it is")
        return None

    def load_fenced(self, path: Path, scratch: str, manifest: Manifest) -> None:
        """Load the dump into `scratch` as a temporary account that can reach nothing else; drop it afterwards.

        The dump is checked as it loads (`checked_dump`: statements scanned before the client receives them, the
        file's sha256, a whole gzip stream and a finished dump before its last chunk): a failed check stops the load
        and raises, and the scratch database is never swapped in. Decompressing, scanning and writing to the client
        overlap, each in a thread of its own."""
        tools, password = self.db.tools(), secrets.token_urlsafe(24)
        account = [restore_account_sql(scratch, password).encode()]
        created = self.streams.stream_in(dbclient.script(self.settings, tools), account, env=self.settings.env)
        try:
            if created:
                raise UserError(f"could not create the restore's temporary database account (exit {created})")
            env = {**self.settings.env, dbclient.LOAD_PASSWORD: password}
            dump = in_background(checked_dump(path, manifest))
            status = self.streams.stream_in(dbclient.load(self.settings, tools, scratch), dump, env=env)
        finally:
            self.db.query(drop_restore_account_sql(), warn=True)
        if status:
            raise UserError(f"loading {path.name} failed (exit {status}, see above)")

    def fingerprint(self, database: str) -> dict[str, list[list[str]]]:
        """What a restore must not change unless it swaps: the tables and their checksums, and the accounts."""
        tables = self.base_tables(database)
        db = sql_identifier(database)
        checked = ", ".join(f"{db}.{sql_identifier(t)}" for t in tables)
        sums = self.db.query(f"CHECKSUM TABLE {checked}") if tables else []
        accounts = self.db.query("SELECT User, Host FROM mysql.user ORDER BY User, Host")
        return {"tables": sums, "accounts": accounts}

    def compare_with(self, live: str, before: Mapping[str, list[list[str]]], safety: Path | None) -> str:
        """The end of a failed restore's message: checked, never assumed."""
        kept = f"the safety backup is {safety}" if safety else "no safety backup was taken (--no-backup)"
        try:
            after = self.fingerprint(live)
        except (UserError, CommandFailed) as error:
            return f"whether the database {live} changed could not be checked ({error}); {kept}"
        if after == before:
            return f"the database {live} is unchanged (checked: the same tables, checksums and accounts as before)"
        what = [name for name in ("tables", "accounts") if after[name] != before[name]]
        return (f"the {' and '.join(what)} of {live} differ from before the restore: the restore's account cannot "
                f"write them, so another client did meanwhile; {kept}")  # fmt: skip

    def base_tables(self, database: str) -> list[str]:
        rows = self.db.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA = {sql_string(database)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
        )
        return [row[0] for row in rows]

    def check_copy(self, scratch: str, manifest: Manifest) -> None:
        tables = self.base_tables(scratch)
        found = {name: int(count) for name, count in self.db.query(count_rows_sql(scratch, tables))} if tables else {}
        wrong = count_mismatches(manifest.tables, found)
        if wrong:
            raise UserError(f"the restored copy does not match the manifest ({'; '.join(wrong[:3])})")
        schema = sql_string(scratch)
        others = self.db.query(
            f"SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema} AND TABLE_TYPE "
            f"= 'VIEW') + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {schema})"
            f" + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {schema})"
            f" + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {schema})"
        )
        if int(others[0][0]):
            raise UserError(OBJECTS_REFUSED)

    def migrate_after_restore(self, no_migrate: bool) -> list[str]:
        """Apply the migrations the running code has and the restored schema lacks, in the running app container
        (its image: what `up`, or the stack's deploy, runs); with no_migrate only say what is missing. Return what is
        still missing."""
        app = self.db.running_app()
        if app is None:
            self.say(self.db.NO_APP)
            return []
        missing = self.pending_migrations(app)
        if missing is None or not missing:
            return missing or []
        if no_migrate:
            self.say(f"the schema lacks {len(missing)} migration(s): {', '.join(missing)} (--no-migrate); /health "
                     f"answers 503 (migrations pending) until {app.hint('migrate')} runs")  # fmt: skip
            return missing
        self.say(f"applying {len(missing)} migration(s) the backup lacks with the running {app.name} image: "
                 f"{', '.join(missing)}")  # fmt: skip
        if not self.run(app.argv(["migrate", "--noinput"]), env=self.settings.env, warn=True).ok:
            raise UserError(f"the backup is restored, but migrate failed in {app.name} (see above); /health answers "
                            f"503 until {app.hint('migrate')} succeeds")  # fmt: skip
        still = self.pending_migrations(app)
        return still or []

    def pending_migrations(self, app: RunningApp) -> list[str] | None:
        """`migrate --plan` in the running app container: the migrations the database lacks (None: unknown)."""
        plan = self.run(app.argv(["migrate", "--plan"]), env=self.settings.env, capture=True, warn=True)
        if not plan.ok:  # the data is in place; only the report is missing
            self.say(f"warning: migrate --plan failed in {app.name}; run {app.hint('migrate --plan')} to see what "
                     "the schema lacks")  # fmt: skip
            return None
        missing = planned_migrations(plan.stdout)
        if not missing:
            self.say("the schema has every migration of the running code")
        return missing
