"""A backup file and its manifest: names, the manifest's format, pruning, and the checks a dump stream passes.

`BACKUP_DIR/<project>-<UTC time>.sql.gz` plus a `.json` manifest (sha256, server, row counts counted from the
dump itself, last migration per app, the running code). `check_file` checks a file against its manifest;
`checked_dump` hands out its dump checked as it goes, through `StatementGuard` (lifecycle/dump_guard.py), which
refuses what a restore must never run before a client receives it. Plain data and streams, no commands:
`lifecycle.backup` and `lifecycle.restore` sequence those.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from lifecycle import media, private
from lifecycle.dump_guard import StatementGuard
from lifecycle.dump_scan import DUMP_COMPLETED
from lifecycle.errors import UserError
from lifecycle.pipeline import in_background
from lifecycle.runner import CHUNK

SUFFIX = ".sql.gz"
PHYSICAL_SUFFIX = ".mbstream.gz"  # a physical backup (lifecycle/physical.py): mariadb-backup's stream, gzipped
SUFFIXES = (SUFFIX, PHYSICAL_SUFFIX)
LOGICAL, PHYSICAL = "logical", "physical"
MANUAL, AUTOMATIC = "manual", "automatic"
OBJECTS_REFUSED = (
    "the backup holds views, triggers, routines or events, which the atomic table swap cannot move "
    "(load it by hand: gunzip -c FILE | invoke db.shell --root)"
)


# ------------------------------------------------------------------------------------------------ manifest
@dataclass(frozen=True)
class Manifest:
    file: str
    sha256: str
    size: int
    created: str  # UTC, ISO 8601
    kind: str  # MANUAL or AUTOMATIC
    reason: str
    project: str
    database: str
    server_image: str
    server_version: str
    dump_tool: str
    tables: dict[str, int] = field(default_factory=dict)
    migrations: dict[str, str] = field(default_factory=dict)
    code_zip_sha256: str = "unknown"
    commit: str = "unknown"
    # Where the dump's snapshot is in the server's binary log (empty/0: the server kept none), the GTID state then,
    # and the server's identity (lifecycle.binlog): what a point-in-time restore starts from.
    binlog_file: str = ""
    binlog_position: int = 0
    binlog_gtid: str = ""
    binlog_origin: str = ""
    media: dict[str, object] = field(default_factory=dict)  # lifecycle/media.py: the media tar and its files
    method: str = LOGICAL  # LOGICAL: a dump (.sql.gz); PHYSICAL: mariadb-backup's copy of the datadir

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and check a manifest; ValueError (one line, naming the field) when a field has the wrong type."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the manifest is not a JSON object")
        for name in cls.__dataclass_fields__:
            if name in data and not _MANIFEST_TYPES[name](data[name]):
                raise ValueError(f"the manifest's {name!r} has the wrong type")
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_mapping(keys: type, values) -> object:
    return lambda value: (
        isinstance(value, dict) and all(isinstance(key, keys) and values(item) for key, item in value.items())
    )


_MANIFEST_TYPES = {
    **{name: (lambda value: isinstance(value, str)) for name in Manifest.__dataclass_fields__},
    "size": _is_count,
    "binlog_position": _is_count,
    "tables": _is_mapping(str, _is_count),
    "migrations": _is_mapping(str, lambda value: isinstance(value, str)),
    "media": media.is_part,
}


def stem(backup: Path) -> str:
    """The backup's name without its suffix (either method's)."""
    return next((backup.name.removesuffix(end) for end in SUFFIXES if backup.name.endswith(end)), backup.name)


def manifest_path(backup: Path) -> Path:
    return backup.with_name(stem(backup) + ".json")


def backup_name(project: str, now: datetime, suffix: str = SUFFIX) -> str:
    """`<project>-<UTC time to the millisecond>.sql.gz` (or PHYSICAL_SUFFIX): names sort by time (new_backup_path)."""
    return f"{project}-{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z{suffix}"


def new_backup_path(folder: Path, project: str, now: datetime, suffix: str = SUFFIX) -> tuple[Path, datetime]:
    """A name no backup in folder has (of either method): two backups within one millisecond take the next free
    millisecond."""
    while any((folder / backup_name(project, now, end)).exists() for end in SUFFIXES):
        now += timedelta(milliseconds=1)
    return folder / backup_name(project, now, suffix), now


def read_manifests(folder: Path) -> list[tuple[Path, Manifest | None]]:
    """Every backup file in folder, newest first, with its manifest (None when missing or unreadable)."""
    found = []
    for path in sorted((p for end in SUFFIXES for p in folder.glob(f"*{end}")), key=stem, reverse=True):
        try:
            found.append((path, Manifest.from_json(manifest_path(path).read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            found.append((path, None))
    return found


def to_prune(backups: Sequence[tuple[Path, Manifest | None]], project: str, keep: int) -> list[Path]:
    """The automatic backups of this project beyond the newest `keep`; never one taken by hand."""
    automatic = [path for path, manifest in backups if manifest and manifest.kind == AUTOMATIC
                 and manifest.project == project]  # fmt: skip
    return sorted(automatic, reverse=True)[keep:]


class HashingFile:
    """A write-only file that also hashes and counts what passes through it."""

    def __init__(self, raw) -> None:
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def decompressed(path: Path, digest: hashlib._Hash | None = None) -> Iterator[bytes]:
    """The dump inside a gzip file, chunk by chunk (never more than CHUNK at once, however well it compressed).

    Raises zlib.error or EOFError on a damaged or truncated stream; feeds the raw bytes to digest on the way."""
    inflater = zlib.decompressobj(wbits=31)
    with path.open("rb") as raw:
        while data := raw.read(CHUNK):
            if digest:
                digest.update(data)
            while True:  # until this input is used up and nothing more is pending
                if inflater.eof:
                    if data.strip(b"\0"):
                        raise zlib.error("data after the end of the gzip stream")
                    break
                out = inflater.decompress(data, CHUNK)
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                if out:
                    yield out
                elif not data:
                    break
    if not inflater.eof:
        raise EOFError("the gzip stream ends early")


def check_file(path: Path) -> Manifest:
    """The checks of a backup that need no decompression: its manifest, gzip header, size and sha256, and the media
    it carries. Enough to refuse a damaged, truncated or changed file in one line before anything is touched;
    what the file says is checked as it loads (`checked_dump`)."""
    if not path.is_file():
        raise UserError(f"{path} does not exist; invoke db.list shows the backups")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty, not a backup; nothing was restored (invoke db.list shows the backups)")
    try:
        manifest = Manifest.from_json(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        raise UserError(
            f"{path} has no readable manifest {manifest_path(path).name}; only backups made by invoke db.backup "
            "can be restored; nothing was restored"
        ) from None
    with path.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise UserError(f"{path} is not a gzip file; nothing was restored")
    size = path.stat().st_size
    if size != manifest.size:
        raise UserError(
            f"{path} is {size} bytes, its manifest says {manifest.size} (truncated or changed); nothing was restored"
        )
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        while data := raw.read(CHUNK):
            digest.update(data)
    if digest.hexdigest() != manifest.sha256:
        raise UserError(_CHANGED.format(path=path))
    if manifest.media:
        media.verify(path, manifest.media)
    return manifest


_CHANGED = "{path} does not match its manifest's sha256 (corrupted or changed); nothing was restored"


def checked_dump(path: Path, manifest: Manifest) -> Iterator[bytes]:
    """The dump in a backup, chunk by chunk, checked as it goes: each chunk is handed out only after the statement
    scan has read the next one (so every statement is scanned before a client receives its end), and the last one
    only after the file proved whole: the sha256 of the bytes read now, a complete gzip stream, the
    '-- Dump completed' line. A statement reaching beyond the database, a view, trigger, routine or event, or a
    damaged file raises UserError at once: a load fed from here stops before the rest of the dump reaches it."""
    digest, tail, guard, held = hashlib.sha256(), b"", StatementGuard(), None
    try:
        for chunk in in_background(decompressed(path, digest)):  # reading, sha256 and zlib in a thread of their own
            guard.feed(chunk)
            _refuse_reaching_out(path, guard)
            tail = (tail + chunk)[-256:]
            if held is not None:
                yield held
            held = chunk
        guard.finish()
    except (zlib.error, EOFError) as error:
        raise UserError(f"{path} is not a complete gzip stream ({error}); nothing was restored") from None
    _refuse_reaching_out(path, guard)
    if digest.hexdigest() != manifest.sha256:
        raise UserError(_CHANGED.format(path=path))
    if DUMP_COMPLETED not in tail:
        raise UserError(f"{path} holds an unfinished dump (no '-- Dump completed' line); nothing was restored")
    if held is not None:
        yield held


def _refuse_reaching_out(path: Path, guard: StatementGuard) -> None:
    if guard.found:
        raise UserError(
            f"{path} holds a statement that reaches beyond the database it restores ({guard.found}); a backup made "
            "by invoke db.backup never does; nothing was restored"
        )
    if guard.objects:
        raise UserError(f"{path}: {OBJECTS_REFUSED}; nothing was restored")


def verify(path: Path) -> Manifest:
    """Check a backup end to end before anything is touched (a fetched remote copy); the one line says what is
    wrong with it. A restore does the same checks while it loads into its scratch database."""
    manifest = check_file(path)
    if manifest.method == PHYSICAL:  # its bytes are the hash's; its restore prepares it before anything changes
        return manifest
    for _ in checked_dump(path, manifest):
        pass
    return manifest


# -------------------------------------------------------------------------------------------- db.list
def format_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def format_age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit}"
    return f"{int(seconds)} s"


def listing(backups: Sequence[tuple[Path, Manifest | None]], now: float) -> list[str]:
    """One line per backup; then one warning line naming the backups another user can read, if any."""
    lines, exposed = [], []
    for path, manifest in backups:
        stat = path.stat()
        if private.readable_by_others(path) or (
            manifest_path(path).is_file() and private.readable_by_others(manifest_path(path))
        ):
            exposed.append(path.name)
        head = f"{path.name}  {format_size(stat.st_size)}  {format_age(now - stat.st_mtime)} old"
        if manifest is None:
            lines.append(f"{head}  (no readable manifest: cannot be restored)")
            continue
        migrations = ", ".join(f"{app}.{name}" for app, name in sorted(manifest.migrations.items())) or "none"
        lines.append(
            f"{head}  {manifest.method} {manifest.kind} ({manifest.reason})  {manifest.database}: "
            f"{len(manifest.tables)} tables, "
            f"{manifest.rows} rows  server {manifest.server_version}  migrations: {migrations}"
        )
    if exposed:
        lines.append(f"warning: {len(exposed)} backup(s) can be read by other users ({', '.join(exposed[:3])}"
                     f"{', ...' if len(exposed) > 3 else ''}): chmod 600 them and their .json manifests")  # fmt: skip
    return lines
