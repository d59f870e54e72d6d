"""Your data: streamed, verified backups of the app database; restores that never leave it half-done; resets.

A backup is `BACKUP_DIR/<project>-<UTC time>.sql.gz` plus a `.json` manifest (sha256, server, row counts
counted from the dump itself, last migration per app, the running code). The dump streams from the db
container through gzip into `<name>.partial`, renamed only when complete. A restore checks sha256 and the
whole gzip stream first, loads into a scratch database, checks its row counts against the manifest, then
swaps it in with one RENAME TABLE statement (atomic in MariaDB and MySQL): killed at any point before the
swap, the previous data is still there. Decisions are plain functions; `Database` sequences commands from
`lifecycle.commands.dbclient` through the `Runner` and the streaming edge.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from lifecycle import binlog, media, private
from lifecycle.backup_file import (
    AUTOMATIC,
    MANUAL,
    OBJECTS_REFUSED,
    SUFFIX,
    HashingFile,
    Manifest,
    RowCounter,
    decompressed,
    format_size,
    listing,
    manifest_path,
    new_backup_path,
    read_manifests,
    to_prune,
    verify,
)
from lifecycle.commands import binlog as binlog_argv
from lifecycle.commands import compose, dbclient, docker
from lifecycle.commands.dbclient import DbTools
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
from lifecycle.probes import ServiceContainer, service_container, volume_exists
from lifecycle.runner import CommandFailed
from lifecycle.stages import DEV, STAGES, Stage

APP_SERVICES = tuple(stage.service for stage in STAGES if stage.serves_http)  # they run manage.py
LABEL_ZIP, LABEL_COMMIT = "io.lifecycle.code-zip.sha256", "org.opencontainers.image.revision"


# -------------------------------------------------------------------------------------- plain decisions


def count_mismatches(expected: Mapping[str, int], found: Mapping[str, int]) -> list[str]:
    names = sorted(set(expected) | set(found))
    return [f"{name}: {found.get(name, 'missing')} rows, manifest {expected.get(name, 'none')}"
            for name in names if expected.get(name) != found.get(name)]  # fmt: skip


def planned_migrations(plan_output: str) -> list[str]:
    """The `app.migration` lines of `manage.py migrate --plan` (empty when the schema is current)."""
    return re.findall(r"^\s*([A-Za-z_][\w]*\.\d{4}\w*)\s*$", plan_output, flags=re.MULTILINE)


@dataclass(frozen=True)
class Running:
    """What `docker ps` says about this project's containers."""

    db_image: str = "unknown"
    app_service: str | None = None
    code_zip_sha256: str = "unknown"
    commit: str = "unknown"


PS_FORMAT = "\t".join(
    ['{{.Label "com.docker.compose.service"}}', "{{.Image}}", f'{{{{.Label "{LABEL_ZIP}"}}}}',
     f'{{{{.Label "{LABEL_COMMIT}"}}}}']
)  # fmt: skip


def running_containers(ps_output: str) -> Running:
    db_image, app = "unknown", None
    for line in ps_output.splitlines():
        service, image, zip_sha, commit = ([*line.split("\t"), "", "", ""])[:4]
        if service == dbclient.SERVICE:
            db_image = image
        elif service in APP_SERVICES and app is None:
            app = (service, zip_sha or "unknown", commit or "unknown")
    if app is None:
        return Running(db_image)
    return Running(db_image, *app)


# ----------------------------------------------------------------------------------------- the database
@dataclass
class Database(UsesContext):
    """The app database of this checkout's running `db` service."""

    ctx: Context
    _tools: DbTools | None = None

    @property
    def folder(self) -> Path:
        return self.settings.root / self.settings.typed("BACKUP_DIR")

    @property
    def volume(self) -> str:
        return compose.db_volume(self.settings)

    def _run(self, argv: Sequence[str], **options) -> str:
        return self.run(argv, env=self.settings.env, **options).stdout

    def container(self) -> ServiceContainer | None:
        return service_container(self.run, self.settings.project_name, dbclient.SERVICE)

    def is_running(self) -> bool:
        found = self.container()
        return found is not None and found.running

    def require_running(self) -> None:
        if not self.is_running():
            raise UserError("the db service is not running; start it with invoke up (nothing was changed)")

    def tools(self) -> DbTools:
        if self._tools is None:
            self._tools = dbclient.choose_tools(self._run(dbclient.probe(self.settings), capture=True))
        return self._tools

    def query(self, statement: str, database: str | None = None, warn: bool = False) -> list[list[str]]:
        output = self._run(dbclient.sql(self.settings, self.tools(), statement, database), capture=True, warn=warn)
        return [line.split("\t") for line in output.splitlines() if line]

    def containers(self) -> Running:
        ps = docker.running_containers_argv(self.settings.project_name, PS_FORMAT)
        return running_containers(self._run(ps, capture=True, warn=True))

    # ------------------------------------------------------------------------------------------ backup
    def backup(self, kind: str = MANUAL, reason: str = "by hand") -> Path | None:
        """Dump the database into BACKUP_DIR with its manifest; return the file (None in a dry run)."""
        if self.dry:
            self.say(f"dry run: would dump the database into {self.folder}/")
            return None
        self.require_running()
        tools = self.tools()
        version = self.query("SELECT VERSION()")[0][0]
        migrations = {app: name for app, name in self.query(
            "SELECT app, MAX(name) FROM django_migrations GROUP BY app", tools.database, warn=True)}  # fmt: skip
        running = self.containers()
        keeps_binlog = self.query("SELECT @@log_bin", warn=True) == [["1"]]
        origin = self._run(binlog_argv.identity(self.settings), capture=True).strip() if keeps_binlog else ""
        path, now = new_backup_path(self.folder, self.settings.project_name, datetime.now(UTC))
        files = media.Media(self.ctx)
        draft = Manifest(
            file=path.name, sha256="", size=0, created=now.isoformat(), kind=kind, reason=reason,
            project=self.settings.project_name, database=tools.database, server_image=running.db_image,
            server_version=version, dump_tool=tools.dump, migrations=migrations,
            code_zip_sha256=running.code_zip_sha256, commit=running.commit, binlog_origin=origin,
        )  # fmt: skip
        partial = path.with_name(path.name + ".partial")
        try:
            private.private_folder(self.folder)
            if files.on:  # the uploads with the rows: one backup, one manifest
                draft = replace(draft, media=files.pack(path))
            manifest = self._stream_dump(path, partial, draft, tools, binlog_argv.dump_options(tools) if origin else [])
        except OSError as error:
            raise UserError(f"writing {partial} failed ({error.strerror or error}); no backup was written") from None
        finally:
            with contextlib.suppress(OSError):  # a folder that could not be made holds no partial file
                partial.unlink(missing_ok=True)
            media.Media.discard_partial(path)
        carried = f", {len(manifest.media['files'])} media file(s)" if manifest.media else ""  # type: ignore[arg-type]
        self.say(f"backup: {path} ({format_size(manifest.size)}, {len(manifest.tables)} tables, {manifest.rows} rows"
                 f"{carried}, {kind})")  # fmt: skip
        if origin:  # and the binlogs closed so far, so a restore to a later time needs nothing from the volume
            from lifecycle.pitr import PointInTime  # pitr builds on this module

            PointInTime(self).copy_binlogs(origin)
        return path

    def _stream_dump(
        self, path: Path, partial: Path, draft: Manifest, tools: DbTools, options: Sequence[str] = ()
    ) -> Manifest:
        """Stream the dump into `partial` (gzip, sha256, row counts on the way), write the manifest, then give the
        dump its final name: only a complete dump with its manifest ever has it."""
        counter, position = RowCounter(), binlog.DumpPosition()
        with private.create_private(partial) as raw:  # 0600, exclusive, never through a planted link
            hashing = HashingFile(raw)
            # Level 1: a safety backup runs before every destructive step, so its speed matters more than its size.
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=1, mtime=0) as packed:

                def sink(chunk: bytes) -> None:
                    counter.feed(chunk)
                    position.feed(chunk)
                    packed.write(chunk)

                dump = dbclient.dump(self.settings, tools, options)
                status = self.streams.stream_out(dump, sink, env=self.settings.env)
            raw.flush()
            os.fsync(raw.fileno())
        tables = counter.finish()
        if status or not counter.completed:
            raise UserError(f"the dump failed (exit {status}, see above); no backup was written")
        manifest = replace(
            draft,
            sha256=hashing.digest.hexdigest(),
            size=hashing.size,
            tables=tables,
            binlog_file=position.file,
            binlog_position=position.position,
            binlog_gtid=position.gtid,
        )
        private.write_private_bytes(manifest_path(path), manifest.to_json().encode("utf-8"))
        if manifest.media:
            media.Media.publish(path)
        partial.rename(path)
        private.fsync_folder(path.parent)
        return manifest

    def safety_backup(self, reason: str, *, skip: bool) -> Path | None:
        """The automatic backup before a destructive step; then prune automatic backups beyond BACKUP_KEEP."""
        if skip:
            self.say(f"safety backup skipped (--no-backup) {reason}")
            return None
        self.say(f"safety backup {reason}")
        try:
            path = self.backup(AUTOMATIC, reason)
        except UserError as error:
            raise UserError(f"{error}; nothing else was done (add --no-backup to go on without a backup)") from None
        self.prune()
        return path

    def prune(self) -> list[Path]:
        if self.dry:
            return []
        keep = self.settings.typed("BACKUP_KEEP")
        doomed = to_prune(read_manifests(self.folder), self.settings.project_name, keep)
        for path in doomed:
            self.say(f"prune automatic backup {path.name} (BACKUP_KEEP={keep})")
            manifest_path(path).unlink(missing_ok=True)
            media.media_path(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        return doomed

    def list(self) -> list[str]:
        backups = read_manifests(self.folder) if self.folder.is_dir() else []
        if not backups:
            return [f"no backups in {self.folder}"]
        return listing(backups, time.time())

    # ----------------------------------------------------------------------------------------- restore
    def restore(
        self, path: Path, *, yes: bool, ask, other_database: bool = False, no_backup: bool = False,
        no_migrate: bool = False,
    ) -> list[str]:  # fmt: skip
        """Replace the database with a verified backup, then apply the migrations the running code has and the
        backup lacks (unless no_migrate); return the migrations the schema still lacks.

        The dump loads as a temporary account whose rights cover the scratch database only, so a statement in it
        that names another database or a global right fails; a failed restore says whether the live database is
        unchanged only after comparing it with how it was before (tables, checksums, accounts)."""
        manifest = verify(path)
        if self.dry:
            self.say(f"dry run: would take a safety backup, load {path.name} into a scratch database, swap it in"
                     f"{'' if no_migrate else ', apply the migrations it lacks'}")  # fmt: skip
            return []
        self.require_running()
        tools = self.tools()
        if manifest.database != tools.database and not other_database:
            raise UserError(
                f"{path.name} is a backup of database {manifest.database!r}, this stack's is {tools.database!r}; "
                "add --other-database to restore it anyway (nothing was changed)"
            )
        confirm_project(self.settings.project_name, f"restoring replaces the database {tools.database}", yes, ask)
        safety = self.safety_backup(f"before db.restore of {path.name}", skip=no_backup)
        live, scratch, replaced = tools.database, f"{tools.database}__restore", f"{tools.database}__replaced"
        files = self._restored_media(manifest)
        before = self.fingerprint(live)
        self._recreate(scratch, like=live)
        try:
            self.load_fenced(path, scratch)
            self._check_copy(scratch, manifest)
            if files:  # a new set beside the live one, every file checked; swapped right after the tables
                files.stage(path, manifest.media, path.name.removesuffix(SUFFIX))
            new_tables = self._base_tables(scratch)
            self.query(swap_sql(live, scratch, replaced, self._base_tables(live), new_tables))
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
        self.query(f"DROP DATABASE IF EXISTS {sql_identifier(scratch)}", warn=True)
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

    def load_fenced(self, path: Path, scratch: str) -> None:
        """Load the dump into `scratch` as a temporary account that can reach nothing else; drop it afterwards."""
        tools, password = self.tools(), secrets.token_urlsafe(24)
        account = [restore_account_sql(scratch, password).encode()]
        created = self.streams.stream_in(dbclient.script(self.settings, tools), account, env=self.settings.env)
        try:
            if created:
                raise UserError(f"could not create the restore's temporary database account (exit {created})")
            env = {**self.settings.env, dbclient.LOAD_PASSWORD: password}
            status = self.streams.stream_in(dbclient.load(self.settings, tools, scratch), decompressed(path), env=env)
        finally:
            self.query(drop_restore_account_sql(), warn=True)
        if status:
            raise UserError(f"loading {path.name} failed (exit {status}, see above)")

    def fingerprint(self, database: str) -> dict[str, list[list[str]]]:
        """What a restore must not change unless it swaps: the tables and their checksums, and the accounts."""
        tables = self._base_tables(database)
        db = sql_identifier(database)
        sums = self.query("CHECKSUM TABLE " + ", ".join(f"{db}.{sql_identifier(t)}" for t in tables)) if tables else []
        accounts = self.query("SELECT User, Host FROM mysql.user ORDER BY User, Host")
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

    def _recreate(self, database: str, *, like: str) -> None:
        """Drop and create `database` with the character set and collation of `like`."""
        found = self.query(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
            f"WHERE SCHEMA_NAME = {sql_string(like)}"
        )
        charset, collation = found[0] if found else ("utf8mb4", "utf8mb4_unicode_ci")
        self.query(f"DROP DATABASE IF EXISTS {sql_identifier(database)}; CREATE DATABASE {sql_identifier(database)} "
                   f"CHARACTER SET {charset} COLLATE {collation}")  # fmt: skip

    def _base_tables(self, database: str) -> list[str]:
        rows = self.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA = {sql_string(database)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
        )
        return [row[0] for row in rows]

    def _check_copy(self, scratch: str, manifest: Manifest) -> None:
        tables = self._base_tables(scratch)
        found = {name: int(count) for name, count in self.query(count_rows_sql(scratch, tables))} if tables else {}
        wrong = count_mismatches(manifest.tables, found)
        if wrong:
            raise UserError(f"the restored copy does not match the manifest ({'; '.join(wrong[:3])})")
        schema = sql_string(scratch)
        others = self.query(
            f"SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema} AND TABLE_TYPE "
            f"= 'VIEW') + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {schema})"
            f" + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {schema})"
            f" + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {schema})"
        )
        if int(others[0][0]):
            raise UserError(OBJECTS_REFUSED)

    def migrate_after_restore(self, no_migrate: bool) -> list[str]:
        """Apply the migrations the running code has and the restored schema lacks, in the running app container
        (its image: what `up` would run); with no_migrate only say what is missing. Return what is still missing."""
        service = self.containers().app_service
        if service is None:
            self.say("no app container is running: the next invoke up applies the migrations the backup lacks")
            return []
        missing = self.pending_migrations(service)
        if missing is None or not missing:
            return missing or []
        stage = next(s for s in STAGES if s.service == service)
        if no_migrate:
            self.say(f"the schema lacks {len(missing)} migration(s): {', '.join(missing)} (--no-migrate); /health "
                     f"answers 503 (migrations pending) until invoke manage migrate --stage {stage} runs")  # fmt: skip
            return missing
        self.say(f"applying {len(missing)} migration(s) the backup lacks with the running {service} image: "
                 f"{', '.join(missing)}")  # fmt: skip
        if not self.run(self._manage(stage, service, ["migrate", "--noinput"]), env=self.settings.env, warn=True).ok:
            raise UserError(f"the backup is restored, but migrate failed in {service} (see above); /health answers "
                            f"503 until invoke manage migrate --stage {stage} succeeds")  # fmt: skip
        still = self.pending_migrations(service)
        return still or []

    def pending_migrations(self, service: str) -> list[str] | None:
        """`migrate --plan` in the running app container: the migrations the database lacks (None: unknown)."""
        argv = compose.manage_exec_argv(self.settings, service, ["migrate", "--plan"])
        plan = self.run(argv, env=self.settings.env, capture=True, warn=True)
        if not plan.ok:  # the data is in place; only the report is missing
            self.say(f"warning: migrate --plan failed in {service}; run invoke manage 'migrate --plan' to see what "
                     "the schema lacks")  # fmt: skip
            return None
        missing = planned_migrations(plan.stdout)
        if not missing:
            self.say("the schema has every migration of the running code")
        return missing

    # ------------------------------------------------------------------------------------------- reset
    def reset(self, *, yes: bool, ask, stage: Stage | None = None, fixture: str | None = None,
              no_backup: bool = False) -> None:  # fmt: skip
        """Drop and recreate the database, migrate it, optionally load a fixture; a safety backup first."""
        if self.dry:
            self.say("dry run: would take a safety backup, drop and recreate the database, migrate it")
            return
        self.require_running()
        database = self.tools().database
        confirm_project(self.settings.project_name, f"resetting drops every table of the database {database}",
                        yes, ask)  # fmt: skip
        self.safety_backup("before db.reset", skip=no_backup)
        running = self.containers().app_service
        stage = stage or next((s for s in STAGES if s.service == running), DEV)
        self._recreate(database, like=database)
        for command in (["migrate", "--noinput"], *([["loaddata", fixture]] if fixture else [])):
            self.run(self._manage(stage, running, command), env=self.settings.env)
        self.say(f"reset {database}: migrated{f', loaded {fixture}' if fixture else ''}")

    def _manage(self, stage: Stage, running: str | None, command: Sequence[str]) -> list[str]:
        """manage.py in the stage's running container, else in a one-off one."""
        if stage.service == running:
            return compose.manage_exec_argv(self.settings, stage.service, command)
        return compose.manage_run_argv(self.settings, stage, command)

    # ------------------------------------------------------------------------------- the data volume
    def volume_exists(self) -> bool:
        return volume_exists(self.run, self.volume)

    def guard_volume_deletion(self, *, no_backup: bool) -> None:
        """Before `down --volumes`: back up the data the volume holds (starting db when it is stopped)."""
        if self.dry:
            self.say("dry run: would take a safety backup of the volume first")
            return
        if not self.volume_exists():
            return
        if not no_backup and not self.is_running():
            started = self.run(compose.start_db_argv(self.settings), env=self.settings.env, warn=True)
            if not started.ok:
                raise UserError("could not start the db service to back up the volume first (see above); nothing was "
                                "deleted (add --no-backup to delete it without a backup)")  # fmt: skip
        self.safety_backup("before deleting the database volume", skip=no_backup)
