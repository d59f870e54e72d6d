"""Point-in-time restore, sequenced: copy the closed binlogs beside the backups; restore the database to a time.

`restore_to` keeps every guarantee of `db.restore` (restore.Restore.restore): the base backup is verified end to end
first, loaded into the scratch database as the fenced account and checked against its manifest; the binlog copies
are checked against their sidecars (sha256, one server, no gap, reaching past the time) before anything changes;
the events up to the time are replayed into the scratch database only; then the same one RENAME TABLE swaps it in,
after a safety backup. A failed step leaves the live database as it was, and says so after checking. The decisions
are plain functions in `lifecycle.binlog`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lifecycle import binlog, private
from lifecycle.backup import Database
from lifecycle.backup_file import AUTOMATIC, LOGICAL, check_file, read_manifests
from lifecycle.binlog import Base, BinlogCopy
from lifecycle.commands import binlog as binlog_argv
from lifecycle.commands.sql import sql_identifier, swap_sql
from lifecycle.confirm import confirm_project
from lifecycle.errors import UserError
from lifecycle.restore import Restore
from lifecycle.runner import CHUNK

WORK = "/tmp/lifecycle-replay"  # in the db container: the copies the decoder reads, removed afterwards


def chunks_of(path: Path, digest=None) -> Iterator[bytes]:
    with path.open("rb") as raw:
        while data := raw.read(CHUNK):
            if digest is not None:
                digest.update(data)
            yield data


def read_copies(folder: Path) -> dict[str, BinlogCopy]:
    """The binlog copies in one server's folder, by file name (a copy without a readable sidecar is ignored)."""
    copies = {}
    for sidecar in sorted(folder.glob(f"*{binlog.SIDECAR}")) if folder.is_dir() else []:
        try:
            copy = BinlogCopy.from_json(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            continue
        if (folder / copy.file).is_file():
            copies[copy.file] = copy
    return copies


@dataclass
class PointInTime:
    """The binlog side of the app database's backups and restores."""

    db: Database

    @property
    def folder(self) -> Path:
        return self.db.folder / binlog.FOLDER

    def keeps_binlog(self) -> bool:
        found = self.db.query("SELECT @@log_bin", warn=True)
        return bool(found) and found[0][0] == "1"

    def origin(self) -> str:
        found = self.db._run(binlog_argv.identity(self.db.settings, self.db.tools().container), capture=True).strip()
        if not found or "/" in found or found.startswith("."):
            raise UserError(f"could not read the database server's identity from its volume ({found!r})")
        return found

    # ------------------------------------------------------------------------------------------- copies
    def copy_binlogs(self, origin: str | None = None) -> list[str]:
        """FLUSH BINARY LOGS, then copy every closed binlog not yet copied whole; return the names copied."""
        if self.db.dry:
            self.say(f"dry run: would flush the binary log and copy the closed binlogs into {self.folder}/")
            return []
        if not self.keeps_binlog():
            self.say("the database server keeps no binary log (invoke up recreates it with one); no binlogs copied")
            return []
        origin = origin or self.origin()
        rows = self.db.query("FLUSH BINARY LOGS; SELECT UTC_TIMESTAMP(6), @@log_bin_basename")
        closed_by = datetime.fromisoformat(rows[0][0]).replace(tzinfo=UTC).isoformat()
        directory = rows[0][1].rsplit("/", 1)[0]
        closed = binlog.closed_logs(self.db.query("SHOW BINARY LOGS"))
        folder = private.private_folder(private.private_folder(self.folder) / origin)
        copies = read_copies(folder)
        wanted = binlog.to_copy(closed, copies)
        sizes = dict(closed)
        for name in wanted:
            self._copy_one(f"{directory}/{name}", folder / name, sizes[name], origin, closed_by)
        if wanted:
            self.say(f"binlogs: copied {len(wanted)} ({', '.join(wanted)}) into {folder}")
        return wanted

    def _copy_one(self, source: str, target: Path, size: int, origin: str, closed_by: str) -> None:
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        digest, written = hashlib.sha256(), 0
        try:
            with private.create_private(partial) as raw:

                def sink(chunk: bytes) -> None:
                    nonlocal written
                    digest.update(chunk)
                    written += len(chunk)
                    raw.write(chunk)

                reader = binlog_argv.read_file(self.db.settings, source, self.db.tools().container)
                status = self.db.streams.stream_out(reader, sink, env=self.db.settings.env)
            if status or written != size:
                raise UserError(f"copying binlog {target.name} failed (exit {status}, {written} of {size} bytes)")
            sidecar = BinlogCopy(target.name, digest.hexdigest(), size, origin, closed_by)
            private.write_private_bytes(target.with_name(target.name + binlog.SIDECAR + ".partial"),
                                        sidecar.to_json().encode())  # fmt: skip
            partial.replace(target)
            target.with_name(target.name + binlog.SIDECAR + ".partial").replace(
                target.with_name(target.name + binlog.SIDECAR)
            )
            private.fsync_folder(target.parent)
        finally:
            partial.unlink(missing_ok=True)

    def say(self, line: str) -> None:
        self.db.say(line)

    # ------------------------------------------------------------------------------------------ restore
    def restore_to(self, when: str, *, yes: bool, ask, no_backup: bool = False, no_migrate: bool = False) -> list[str]:
        """Restore the database as it was at `when`: the last full backup before it, then its binlog up to it."""
        target = binlog.parse_instant(when, datetime.now(UTC))
        if self.db.dry:
            self.say(f"dry run: would restore the newest backup before {target:%Y-%m-%dT%H:%M:%SZ} into a scratch "
                     "database, replay the binlogs up to that time, swap it in")  # fmt: skip
            return []
        db = self.db
        db.require_running()
        tools = db.tools()
        if self.keeps_binlog():
            self.copy_binlogs()  # the copies then reach to now: the restore needs nothing from the volume
        candidates = [
            Base(path.name, datetime.fromisoformat(m.created), m.binlog_file, m.binlog_position, m.binlog_origin)
            for path, m in read_manifests(db.folder)
            if m
            and m.project == db.settings.project_name
            and m.database == tools.database
            and m.method == LOGICAL  # a physical backup is no base yet: its copy replaces the whole server
        ]
        base = binlog.choose_base(candidates, target)
        folder = self.folder / base.origin
        copies = read_copies(folder)
        files = binlog.chain(base, copies, target)
        for name in files:  # every byte as copied, before anything changes
            digest = hashlib.sha256()
            for _ in chunks_of(folder / name, digest):
                pass
            if digest.hexdigest() != copies[name].sha256:
                raise UserError(f"binlog copy {folder / name} does not match its sidecar's sha256 (changed or "
                                "damaged); nothing was changed")  # fmt: skip
        path = db.folder / base.name
        manifest = check_file(path)
        confirm_project(db.settings.project_name, f"restoring to {target:%Y-%m-%dT%H:%M:%SZ} replaces the database "
                        f"{tools.database}", yes, ask)  # fmt: skip
        safety = db.safety_backup(f"before db.restore --to {target:%Y-%m-%dT%H:%M:%SZ}", skip=no_backup)
        live, scratch, replaced = tools.database, f"{tools.database}__restore", f"{tools.database}__replaced"
        restoring = Restore(db)
        before = restoring.fingerprint(live)
        db.recreate(scratch, like=live)
        try:
            restoring.load_fenced(path, scratch, manifest)
            restoring.check_copy(scratch, manifest)
            counter = self._replay(files, folder, base, scratch, target)
            db.query(swap_sql(live, scratch, replaced, restoring.base_tables(live), restoring.base_tables(scratch)))
        except UserError as error:
            db.query(f"DROP DATABASE IF EXISTS {sql_identifier(scratch)}", warn=True)
            raise UserError(f"{error}; {restoring.compare_with(live, before, safety)}") from None
        except BaseException:
            db.query(f"DROP DATABASE IF EXISTS {sql_identifier(scratch)}", warn=True)
            raise
        last = f", the last at {counter.last:%Y-%m-%dT%H:%M:%SZ}" if counter.last else ""
        self.say(f"restored {live} to {target:%Y-%m-%dT%H:%M:%SZ}: backup {base.name}, then {counter.transactions} "
                 f"transaction(s) replayed from {len(files)} binlog(s){last}")  # fmt: skip
        # The replay was not binlogged: the next restore to a later time starts from this backup.
        db.backup(AUTOMATIC, f"after db.restore --to {target:%Y-%m-%dT%H:%M:%SZ}")
        return restoring.migrate_after_restore(no_migrate)

    def _replay(self, files: list[str], folder: Path, base: Base, scratch: str, target: datetime):
        """Decode the binlogs in the db container (up to target, renamed into scratch), then replay them as root."""
        db, settings = self.db, self.db.settings
        tools = db.tools()
        counter = binlog.ReplayCounter()
        decoded = db.folder / f".replay-{base.name}.sql"
        decoded.unlink(missing_ok=True)
        try:
            for name in files:
                put = binlog_argv.put_file(settings, f"{WORK}/{name}", tools.container)
                status = db.streams.stream_in(put, chunks_of(folder / name), env=settings.env)
                if status:
                    raise UserError(f"could not hand binlog {name} to the db container (exit {status})")
            with private.create_private(decoded) as raw:

                def sink(chunk: bytes) -> None:
                    counter.feed(chunk)
                    raw.write(chunk)

                paths = [f"{WORK}/{name}" for name in files]
                argv = binlog_argv.decode(settings, tools, paths, database=tools.database, into=scratch, stop=target,
                                          start_position=base.binlog_position)  # fmt: skip
                status = db.streams.stream_out(argv, sink, env=settings.env)
            counter.finish()
            if status:
                raise UserError(f"decoding the binlogs failed (exit {status}, see above)")
            status = db.streams.stream_in(binlog_argv.replay(settings, tools), chunks_of(decoded), env=settings.env)
            if status:
                raise UserError(f"replaying the binlogs into {scratch} failed (exit {status}, see above)")
        finally:
            decoded.unlink(missing_ok=True)
            remove = binlog_argv.remove_folder(settings, WORK, tools.container)
            db.run(remove, env=settings.env, warn=True, capture=True)
        return counter
