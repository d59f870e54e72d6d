"""Your data: streamed, verified backups of the app database; resets; the guard before its volume is deleted.

A backup is `BACKUP_DIR/<project>-<UTC time>.sql.gz` plus a `.json` manifest (sha256, server, row counts
counted from the dump itself, last migration per app, the running code). The dump streams from the db
container through gzip into `<name>.partial`, renamed only when complete. Restoring one is lifecycle/restore.py.
Decisions are plain functions; `Database` sequences commands from `lifecycle.commands.dbclient` through the
`Runner` and the streaming edge.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from lifecycle import binlog, media, private
from lifecycle.backup_file import (
    AUTOMATIC,
    MANUAL,
    SUFFIX,
    HashingFile,
    Manifest,
    format_size,
    listing,
    manifest_path,
    new_backup_path,
    read_manifests,
    to_prune,
)
from lifecycle.commands import binlog as binlog_argv
from lifecycle.commands import compose, dbclient, docker
from lifecycle.commands.dbclient import DbTools
from lifecycle.commands.sql import sql_identifier, sql_string
from lifecycle.confirm import confirm_project
from lifecycle.context import Context, UsesContext
from lifecycle.dump_scan import RowCounter
from lifecycle.errors import UserError
from lifecycle.pipeline import BackgroundWriter
from lifecycle.probes import ServiceContainer, service_container, volume_exists
from lifecycle.stages import DEV, PROD, STAGES, Stage

APP_SERVICES = tuple(stage.service for stage in STAGES if stage.serves_http)  # they run manage.py
LABEL_ZIP, LABEL_COMMIT = "io.lifecycle.code-zip.sha256", "org.opencontainers.image.revision"


# -------------------------------------------------------------------------------------- plain decisions


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


@dataclass(frozen=True)
class RunningApp:
    """Where manage.py runs against the live database with the running code: a name for messages, the argv of
    `python manage.py` there (the command follows), and how a user runs a command there by hand ({command}, or
    {quoted} as one shell word)."""

    name: str
    manage: tuple[str, ...]
    by_hand: str

    def argv(self, command: Sequence[str]) -> list[str]:
        return [*self.manage, *command]

    def hint(self, command: str) -> str:
        return self.by_hand.format(command=command, quoted=shlex.quote(command))


# ----------------------------------------------------------------------------------------- the database
@dataclass
class Database(UsesContext):
    """The app database of this checkout's running `db` service. lifecycle/stack_data.py's `StackDatabase` is the
    swarm stack's: the same steps, another container and another answer to "what runs"."""

    ctx: Context
    _tools: DbTools | None = None
    NO_APP = "no app container is running: the next invoke up applies the migrations the backup lacks"

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
        """The db container's programs and database, and its id while it runs (commands then `docker exec` it)."""
        if self._tools is None:
            found = self.container()
            container = found.id if found is not None and found.running else ""
            probe = self._run(dbclient.probe(self.settings, container), capture=True)
            self._tools = dbclient.choose_tools(probe, container)
        return self._tools

    def forget_container(self) -> None:
        """After `up` may have made a new db container: look its id up again before the next command."""
        self._tools = None

    def query(self, statement: str, database: str | None = None, warn: bool = False) -> list[list[str]]:
        output = self._run(dbclient.sql(self.settings, self.tools(), statement, database), capture=True, warn=warn)
        return [line.split("\t") for line in output.splitlines() if line]

    def containers(self) -> Running:
        ps = docker.running_containers_argv(self.settings.project_name, PS_FORMAT)
        return running_containers(self._run(ps, capture=True, warn=True))

    def running_app(self) -> RunningApp | None:
        """The running app service's container (its image: what `up` would run), None when none runs."""
        service = self.containers().app_service
        if service is None:
            return None
        stage = next(s for s in STAGES if s.service == service)
        manage = compose.manage_exec_argv(self.settings, service, [])
        return RunningApp(service, tuple(manage), f"invoke manage {{quoted}} --stage {stage}")

    def app_image(self) -> str:
        """The image whose code the database should fit (the drill's migrate --check): the checkout's prod image."""
        return self.settings.image(PROD)

    def require_physical(self) -> None:
        """Physical backups copy the compose db volume: nothing to refuse here (the stack's database does)."""

    # ------------------------------------------------------------------------------------------ backup
    def backup(self, kind: str = MANUAL, reason: str = "by hand") -> Path | None:
        """Dump the database into BACKUP_DIR with its manifest; return the file (None in a dry run)."""
        if self.dry:
            self.say(f"dry run: would dump the database into {self.folder}/")
            return None
        self.require_running()
        tools = self.tools()
        path, draft = self.draft_manifest(kind, reason)
        origin = draft.binlog_origin
        files = media.Media(self.ctx)
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

    def draft_manifest(self, kind: str, reason: str, suffix: str = SUFFIX) -> tuple[Path, Manifest]:
        """A new backup's free name and its manifest so far: what the running server and code say (no sha256,
        size or row counts yet)."""
        tools = self.tools()
        version = self.query("SELECT VERSION()")[0][0]
        migrations = {app: name for app, name in self.query(
            "SELECT app, MAX(name) FROM django_migrations GROUP BY app", tools.database, warn=True)}  # fmt: skip
        running = self.containers()
        keeps_binlog = self.query("SELECT @@log_bin", warn=True) == [["1"]]
        origin = (
            self._run(binlog_argv.identity(self.settings, tools.container), capture=True).strip()
            if keeps_binlog
            else ""
        )
        path, now = new_backup_path(self.folder, self.settings.project_name, datetime.now(UTC), suffix)
        return path, Manifest(
            file=path.name, sha256="", size=0, created=now.isoformat(), kind=kind, reason=reason,
            project=self.settings.project_name, database=tools.database, server_image=running.db_image,
            server_version=version, dump_tool=tools.dump, migrations=migrations,
            code_zip_sha256=running.code_zip_sha256, commit=running.commit, binlog_origin=origin,
        )  # fmt: skip

    def _stream_dump(
        self, path: Path, partial: Path, draft: Manifest, tools: DbTools, options: Sequence[str] = ()
    ) -> Manifest:
        """Stream the dump into `partial` (gzip, sha256, row counts on the way), write the manifest, then give the
        dump its final name: only a complete dump with its manifest ever has it."""
        counter, position = RowCounter(), binlog.DumpPosition()
        with private.create_private(partial) as raw:  # 0600, exclusive, never through a planted link
            hashing = HashingFile(raw)
            # Level 1: a safety backup runs before every destructive step, so its speed matters more than its size.
            # gzip, sha256 and the write run in a thread of their own (zlib and hashlib leave Python's lock), beside
            # the counting here.
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=1, mtime=0) as packed, \
                    BackgroundWriter(packed.write) as packing:  # fmt: skip

                def sink(chunk: bytes) -> None:
                    packing.put(chunk)
                    counter.feed(chunk)
                    position.feed(chunk)

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
        self.recreate(database, like=database)
        for command in (["migrate", "--noinput"], *([["loaddata", fixture]] if fixture else [])):
            self.run(self.manage_argv(stage, running, command), env=self.settings.env)
        self.say(f"reset {database}: migrated{f', loaded {fixture}' if fixture else ''}")

    def recreate(self, database: str, *, like: str) -> None:
        """Drop and create `database` with the character set and collation of `like`."""
        found = self.query(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
            f"WHERE SCHEMA_NAME = {sql_string(like)}"
        )
        charset, collation = found[0] if found else ("utf8mb4", "utf8mb4_unicode_ci")
        self.query(f"DROP DATABASE IF EXISTS {sql_identifier(database)}; CREATE DATABASE {sql_identifier(database)} "
                   f"CHARACTER SET {charset} COLLATE {collation}")  # fmt: skip

    def manage_argv(self, stage: Stage, running: str | None, command: Sequence[str]) -> list[str]:
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
