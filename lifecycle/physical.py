"""Physical backups: mariadb-backup's copy of the server's data directory, for databases a dump is too slow for.

`db.backup --physical` streams `mariadb-backup --backup --stream=mbstream` out of the running db container through
gzip into `<name>.mbstream.gz.partial`; before the file gets its name it is proved: unpacked and prepared in a
throwaway volume, served by a throwaway server (no network, no accounts), its tables counted into the manifest with
the binary log position mariadb-backup recorded. `db.restore` of one repeats that proof against the manifest
(sha256 of the bytes read, table counts) and only then stops the db service, takes the safety backup, and swaps the
prepared data into the data volume: copied beside the data first (the data untouched), then renamed into place
with the old data kept aside until the restored server is healthy; unhealthy, the old data is renamed back.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from lifecycle import media, private
from lifecycle.backup import Database
from lifecycle.backup_file import (
    MANUAL,
    PHYSICAL,
    PHYSICAL_SUFFIX,
    HashingFile,
    Manifest,
    check_file,
    decompressed,
    format_size,
    manifest_path,
)
from lifecycle.commands import compose, dbclient, docker
from lifecycle.commands import physical as argv
from lifecycle.commands.sql import count_rows_sql, sql_string
from lifecycle.confirm import confirm_project
from lifecycle.context import Context, UsesContext
from lifecycle.errors import UserError
from lifecycle.pipeline import BackgroundWriter, in_background
from lifecycle.restore import Restore, count_mismatches
from lifecycle.runner import CommandFailed

LABEL = "io.lifecycle.physical-scratch"  # on every throwaway volume and server, for a clean-up by label
SERVER_START = 180.0  # seconds a throwaway server may take to open a prepared copy


class SwapFailed(UserError):
    """A failure once the db volume was touched: its message says where the previous data is."""


def state(rolled_back: bool, running: bool) -> str:
    """Where the previous data is after a failed switch, and whether the db service runs on it again."""
    if not rolled_back:
        return f"the previous data is in {argv.REPLACED} in the db volume (move it back by hand: docs/data.md)"
    if running:
        return "the previous data is back in place and running"
    return "the previous data is back in place, but the db service did not start on it (see above; invoke up)"


def binlog_fields(info: str) -> tuple[str, int, str]:
    """mariadb-backup's binlog record (`file<TAB>position[<TAB>gtid]`) as (file, position, gtid); empty: none."""
    parts = info.strip().split("\t")
    if len(parts) < 2 or not parts[1].isdigit():
        return "", 0, ""
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


@dataclass
class PreparedCopy(UsesContext):
    """A prepared data directory in a throwaway volume, served by a throwaway server while `with`-ed."""

    ctx: Context
    volume: str
    server: str

    def query(self, statement: str) -> list[list[str]]:
        output = self.run(argv.query_argv(self.server, statement), capture=True).stdout
        return [line.split("\t") for line in output.splitlines() if line]

    def count(self, database: str) -> dict[str, int]:
        """Every base table of `database` in the copy, with its exact row count."""
        tables = [row[0] for row in self.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            f"{sql_string(database)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")]  # fmt: skip
        return {name: int(count) for name, count in self.query(count_rows_sql(database, tables))} if tables else {}

    def binlog(self) -> tuple[str, int, str]:
        return binlog_fields(self.run(argv.binlog_info_argv(self.server), capture=True).stdout)

    def stop(self) -> None:
        """Shut the throwaway server down cleanly: its data is then ready to be swapped in."""
        self.run(argv.stop_container_argv(self.server), capture=True)


@dataclass
class Physical(UsesContext):
    """Physical backups and restores of one `Database` (its context, its db service)."""

    db: Database

    @property
    def ctx(self) -> Context:  # type: ignore[override]
        return self.db.ctx

    def image(self) -> str:
        """The running db container's image (its mariadb-backup matches the server), else DB_IMAGE."""
        running = self.db.containers().db_image
        return running if running != "unknown" else self.settings["DB_IMAGE"]

    # ------------------------------------------------------------------------------------------ backup
    def backup(self, kind: str = MANUAL, reason: str = "by hand") -> Path | None:
        """mariadb-backup of the running server into BACKUP_DIR, proved by a prepare and its counts; return it."""
        if self.dry:
            self.say(f"dry run: would copy the database server's data with mariadb-backup into {self.db.folder}/")
            return None
        self.db.require_physical()
        self.db.require_running()
        tools = self.db.tools()
        if media.Media(self.ctx).on:
            self.say("note: a physical backup carries no media files; invoke db.backup (logical) carries them")
        path, draft = self.db.draft_manifest(kind, reason, PHYSICAL_SUFFIX)
        partial = path.with_name(path.name + ".partial")
        try:
            private.private_folder(self.db.folder)
            sha256, size = self._stream_backup(partial, tools.container)
            with self.prepared(partial, sha256, self.image()) as copy:
                tables, (file, position, gtid) = copy.count(tools.database), copy.binlog()
            manifest = replace(draft, method=PHYSICAL, dump_tool="mariadb-backup", sha256=sha256, size=size,
                               tables=tables, binlog_file=file, binlog_position=position, binlog_gtid=gtid)  # fmt: skip
            private.write_private_bytes(manifest_path(path), manifest.to_json().encode("utf-8"))
            partial.rename(path)
            private.fsync_folder(path.parent)
        except OSError as error:
            raise UserError(f"writing {partial} failed ({error.strerror or error}); no backup was written") from None
        except (UserError, CommandFailed) as error:
            raise UserError(f"{error}; no backup was written") from None
        finally:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        self.say(f"backup: {path} ({format_size(size)}, physical, {len(tables)} tables, {manifest.rows} rows, {kind})")
        return path

    def _stream_backup(self, partial: Path, container: str) -> tuple[str, int]:
        """mariadb-backup's stream through gzip (level 1, in a thread) into `partial`; its sha256 and size."""
        with private.create_private(partial) as raw:
            hashing = HashingFile(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=1, mtime=0) as packed, \
                    BackgroundWriter(packed.write) as packing:  # fmt: skip
                status = self.streams.stream_out(argv.backup_argv(container), packing.put, env=self.settings.env)
            raw.flush()
            os.fsync(raw.fileno())
        if status:
            raise UserError(f"mariadb-backup failed (exit {status}, see above)")
        return hashing.digest.hexdigest(), hashing.size

    @contextlib.contextmanager
    def prepared(self, path: Path, sha256: str, image: str) -> Iterator[PreparedCopy]:
        """The backup unpacked and prepared in a throwaway volume, with a throwaway server on it once the bytes read
        proved to be the ones the manifest names; both removed afterwards, whatever happens."""
        name = f"{self.settings.project_name}-physical-{secrets.token_hex(4)}"
        label = f"{LABEL}={self.settings.project_name}"
        copy = PreparedCopy(self.ctx, name, name)
        self.run(argv.volume_create_argv(name, label), capture=True)
        try:
            self._unpack(path, sha256, image, name)
            self.run(argv.serve_argv(image, name, name, label), capture=True)
            self.ctx.wait_until(lambda: self.run(argv.ping_argv(name), warn=True, capture=True).ok, SERVER_START,
                                0.5, f"the throwaway server did not open the prepared copy of {path.name} (docker "
                                f"logs {name})")  # fmt: skip
            yield copy
        finally:
            self.run(argv.remove_container_argv(name), warn=True, capture=True)
            self.run(docker.volume_rm_argv(name), warn=True, capture=True)

    def _unpack(self, path: Path, sha256: str, image: str, volume: str) -> None:
        digest = hashlib.sha256()
        try:
            status = self.streams.stream_in(argv.unpack_argv(image, volume), in_background(decompressed(path, digest)),
                                            env=self.settings.env)  # fmt: skip
        except (zlib.error, EOFError) as error:
            raise UserError(f"{path.name} is not a complete gzip stream ({error})") from None
        if digest.hexdigest() != sha256:
            raise UserError(f"{path.name} does not match its manifest's sha256 (corrupted or changed)")
        if status:
            raise UserError(f"unpacking or preparing {path.name} failed (exit {status}, see above)")

    # ----------------------------------------------------------------------------------------- restore
    def restore(self, path: Path, *, yes: bool, ask, no_backup: bool = False, no_migrate: bool = False) -> list[str]:
        """Replace the server's data with a proved physical backup; then the migrations it lacks (as db.restore)."""
        manifest = check_file(path)
        if manifest.method != PHYSICAL:
            raise UserError(f"{path.name} is not a physical backup; nothing was restored")
        self.db.require_physical()
        if self.dry:
            self.say(f"dry run: would prepare {path.name} in a throwaway volume, check it, take a safety backup, "
                     "swap it into the db volume")  # fmt: skip
            return []
        self.db.require_running()
        tools = self.db.tools()
        if manifest.database != tools.database:
            raise UserError(
                f"{path.name} is a physical backup of database {manifest.database!r}, this stack's is "
                f"{tools.database!r}; a physical backup restores only into its own (nothing was changed)"
            )
        confirm_project(self.settings.project_name, "restoring a physical backup replaces the whole server's data "
                        f"(every database and account) with {path.name}'s", yes, ask)  # fmt: skip
        image = self.image()
        try:
            with self.prepared(path, manifest.sha256, image) as copy:
                if wrong := count_mismatches(manifest.tables, copy.count(manifest.database)):
                    raise UserError(f"the prepared copy does not match the manifest ({'; '.join(wrong[:3])})")
                copy.stop()
                safety = self.db.safety_backup(f"before db.restore of {path.name}", skip=no_backup)
                self._swap(image, copy.volume, safety, manifest)
        except SwapFailed:
            raise
        except (UserError, CommandFailed) as error:
            raise UserError(f"{error}; nothing was restored, the database is untouched") from None
        self.db.forget_container()
        self.say(f"restored {path.name} (physical): {len(manifest.tables)} tables, {manifest.rows} rows")
        return Restore(self.db).migrate_after_restore(no_migrate)

    def _swap(self, image: str, prepared: str, safety: Path | None, manifest: Manifest) -> None:
        """Stop db, copy the prepared data beside the live data, rename it into place, start db; unhealthy or not
        serving the manifest's rows: back."""
        env, live = self.settings.env, self.db.volume

        def step(name: str) -> bool:
            return self.run(argv.swap_argv(image, live, prepared, name), env=env, warn=True).ok

        def start(bounded: bool = False) -> bool:  # bounded: the restored server's chance; unbounded: the old one's
            command = compose.start_db_argv(self.settings, build=False, bounded=bounded)
            return self.run(command, env=env, warn=True).ok

        kept = f"the safety backup is {safety}" if safety else "no safety backup was taken (--no-backup)"
        self.run(compose.compose_argv(self.settings, "stop", dbclient.SERVICE), env=env)
        if not step("copy"):
            step("discard")
            raise SwapFailed(f"copying the prepared data into the db volume failed (see above); {state(True, start())}")
        if not step("switch"):
            rolled_back = step("rollback")
            raise SwapFailed(f"renaming the restored data into the db volume failed; "
                             f"{state(rolled_back, rolled_back and start())} ({kept})")  # fmt: skip
        if not (start(bounded=True) and self._serves(manifest)):
            self.run(compose.compose_argv(self.settings, "stop", dbclient.SERVICE), env=env, warn=True)
            rolled_back = step("rollback")
            where = state(rolled_back, rolled_back and start())
            raise SwapFailed(f"the restored server did not turn healthy within WAIT_TIMEOUT, or not with the "
                             f"manifest's rows (see above); {where} ({kept})")  # fmt: skip
        step("finish")  # the db service is healthy on the restored data: what it replaced goes

    def _serves(self, manifest: Manifest) -> bool:
        """The db service, restarted on the restored data, answers root's queries with the manifest's row counts."""
        self.db.forget_container()
        restore = Restore(self.db)
        try:
            tables = restore.base_tables(manifest.database)
            counted = self.db.query(count_rows_sql(manifest.database, tables)) if tables else []
        except (UserError, CommandFailed):
            return False
        return not count_mismatches(manifest.tables, {name: int(count) for name, count in counted})
