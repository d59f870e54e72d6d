"""Point-in-time restore, the plain parts: the binary log's commands, where a dump starts in it, and the decisions.

The `db` service writes a binary log (ROW format, `DB_SERVER_ID`, kept `DB_BINLOG_SECONDS`). A full backup records
the binlog file and position its snapshot was taken at (the dump's own `--master-data=2` comment, so it is the
snapshot's, not a guess taken beside it) and the server's identity; every backup (and `db.backup --binlogs`) copies
the closed binlogs into `BACKUP_DIR/binlogs/<identity>/`, each with a sidecar (sha256, size, the time it was known
closed). A restore to T takes the last full backup before T and the binlogs from its position, decoded by the
server's own `mariadb-binlog`/`mysqlbinlog` with `--stop-datetime` (T in UTC, the decoder's zone set to UTC).
Nothing here runs anything: scanners and pure decisions, unit-tested as tables; the argv builders are in
lifecycle.commands.binlog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from lifecycle.errors import UserError

FOLDER = "binlogs"  # inside BACKUP_DIR
SIDECAR = ".json"


_POSITION = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)', "
    rb"(?:MASTER|SOURCE)_LOG_POS=(\d+);",
    re.MULTILINE,
)
_GTID = re.compile(rb"^-- SET GLOBAL gtid_slave_pos='([^']*)';|^/\* SET @@GLOBAL\.GTID_PURGED=.*'([^']*)';", re.M)
_MARKERS = (b"-- CHANGE", b"gtid_slave_pos", b"GTID_PURGED")  # the position and GTID comments
_END_MARKERS = (b"gtid_slave_pos",)  # mariadb-dump writes its GTID comment after the data (the others come first)
_LINE = 512  # the comment lines looked for are shorter: a longer line is never one of them


class DumpPosition:
    """Finds, as the dump streams by, the binlog position (and GTID state) its snapshot was taken at.

    Only whole comment lines are looked at: the unfinished last line of a chunk waits for the next one (a line
    longer than any of them is cut, marked as not starting a line)."""

    def __init__(self) -> None:
        self.file, self.position, self.gtid = "", 0, ""
        self._tail = b""
        self._past_header = False  # a table was defined: only MariaDB's GTID comment can still come (at the end)

    def feed(self, chunk: bytes) -> None:
        if self._past_header and self.gtid:
            return
        markers = _END_MARKERS if self._past_header else _MARKERS
        self._past_header = self._past_header or b"\nCREATE TABLE " in chunk
        data = self._tail + chunk
        cut = data.rfind(b"\n") + 1
        complete, rest = data[:cut], data[cut:]
        self._tail = rest if len(rest) <= _LINE else b"x"  # `x`: what follows does not start a line
        if any(marker in complete for marker in markers):
            if not self.file and (match := _POSITION.search(complete)):
                self.file, self.position = match.group(1).decode(), int(match.group(2))
            if match := _GTID.search(complete):
                self.gtid = (match.group(1) or match.group(2) or b"").decode()


# ---------------------------------------------------------------------------------------------- the copies
@dataclass(frozen=True)
class BinlogCopy:
    """A closed binlog copied from the server: its sidecar."""

    file: str
    sha256: str
    size: int
    origin: str  # the server's identity
    closed_by: str  # UTC, ISO 8601: the file held no event after this time (it was closed then or earlier)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BinlogCopy:
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != set(cls.__dataclass_fields__):
            raise ValueError("not a binlog sidecar")
        if not isinstance(data["size"], int) or not all(isinstance(data[k], str) for k in data if k != "size"):
            raise ValueError("a binlog sidecar field has the wrong type")
        return cls(**data)


def closed_logs(show_binary_logs: Sequence[Sequence[str]]) -> list[tuple[str, int]]:
    """`SHOW BINARY LOGS` rows (name, size, ...): every file but the last, which the server is still writing."""
    rows = [(row[0], int(row[1])) for row in show_binary_logs if len(row) >= 2 and row[1].isdigit()]
    return rows[:-1]


def to_copy(closed: Sequence[tuple[str, int]], copied: Mapping[str, BinlogCopy]) -> list[str]:
    """The closed binlogs not yet copied whole (a copy of another size is taken again)."""
    return [name for name, size in closed if name not in copied or copied[name].size != size]


def sequence_number(name: str) -> int | None:
    match = re.fullmatch(r".+\.(\d{6,})", name)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------- decisions
def parse_instant(text: str, now: datetime) -> datetime:
    """`--to`: an ISO 8601 time with its zone (Z or +HH:MM), not after now; returned in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"--to {text!r} is not a time; give one like 2026-12-03T14:05:00Z (nothing was changed)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UserError(f"--to {text!r} has no time zone; add Z for UTC or an offset like +01:00 (nothing was changed)")
    moment = moment.astimezone(UTC)
    if moment > now:
        raise UserError(
            f"--to {moment:%Y-%m-%dT%H:%M:%SZ} is after now ({now:%Y-%m-%dT%H:%M:%SZ}); nothing was changed"
        )
    return moment


@dataclass(frozen=True)
class Base:
    """The full backup a point-in-time restore starts from."""

    name: str
    created: datetime
    binlog_file: str
    binlog_position: int
    origin: str


def choose_base(candidates: Sequence[Base], target: datetime) -> Base:
    """The newest full backup taken before target that recorded a binlog position."""
    usable = [base for base in candidates if base.binlog_file and base.origin]
    before = [base for base in usable if base.created < target]
    if not before:
        oldest = min((base.created for base in usable), default=None)
        since = f"the oldest backup with a binlog position is from {oldest:%Y-%m-%dT%H:%M:%SZ}" if oldest else (
            "no backup records a binlog position (take one with invoke db.backup)")  # fmt: skip
        raise UserError(f"--to {target:%Y-%m-%dT%H:%M:%SZ} is before every usable backup: {since}; nothing was changed")
    return max(before, key=lambda base: base.created)


def chain(base: Base, copies: Mapping[str, BinlogCopy], target: datetime) -> list[str]:
    """The binlogs to replay from the base's file to target, in order; refused: a file missing in the sequence (a
    gap), a copy from another server, copies that end before target."""
    first = sequence_number(base.binlog_file)
    stem = base.binlog_file.rsplit(".", 1)[0]
    if first is None:
        raise UserError(f"the backup's binlog file {base.binlog_file!r} has no sequence number; nothing was changed")
    ours = {}
    for name, copy in copies.items():
        number = sequence_number(name)
        if number is None or not name.startswith(stem + ".") or number < first:
            continue
        if copy.origin != base.origin:
            raise UserError(f"binlog {name} comes from another server ({copy.origin}, the backup's is {base.origin}); "
                            "nothing was changed")  # fmt: skip
        ours[number] = name
    if first not in ours:
        raise UserError(f"binlog {base.binlog_file}, where backup {base.name} starts, was not copied; nothing was "
                        "changed")  # fmt: skip
    files, number = [], first
    while number in ours:
        files.append(ours[number])
        if datetime.fromisoformat(copies[ours[number]].closed_by) >= target:
            # and the next one, if copied: a transaction begun before target may have been written after the flush
            return files + ([ours[number + 1]] if number + 1 in ours else [])
        number += 1
    last = copies[files[-1]]
    after = [ours[n] for n in sorted(ours) if n > number]
    if after:
        raise UserError(f"the binlogs have a gap: {files[-1]} is followed by {after[0]}, not by the next number; "
                        f"they reach only to {last.closed_by}; nothing was changed")  # fmt: skip
    raise UserError(f"the copied binlogs reach only to {last.closed_by}, before --to {target:%Y-%m-%dT%H:%M:%SZ}; "
                    "nothing was changed")  # fmt: skip


# -------------------------------------------------------------------------------------- what was replayed
_HEADER = rb"^#(\d{6}) {1,2}(\d{1,2}:\d{2}:\d{2}) server id \d+ .*\t"
_EVENT = re.compile(_HEADER + rb"GTID ", re.MULTILINE)  # MariaDB: `GTID 0-1-45 trans`
_MYSQL_EVENT = re.compile(_HEADER + rb"(?:Anonymous_)?GTID\tlast_committed", re.MULTILINE)


class ReplayCounter:
    """Counts the transactions in the decoder's output (one GTID event each) and the last one's time (UTC: the
    decoder ran with TZ=UTC)."""

    def __init__(self) -> None:
        self.transactions = 0
        self.last: datetime | None = None
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        cut = data.rfind(b"\n") + 1
        complete, self._tail = data[:cut], data[cut:]
        for pattern in (_EVENT, _MYSQL_EVENT):
            for match in pattern.finditer(complete):
                self.transactions += 1
                self.last = event_time(match.group(1), match.group(2))

    def finish(self) -> None:
        self.feed(b"\n")


def event_time(day: bytes, clock: bytes) -> datetime:
    return datetime.strptime(f"{day.decode()} {clock.decode()}", "%y%m%d %H:%M:%S").replace(tzinfo=UTC)
