"""Your data: streamed, verified backups of the app database; restores that never leave it half-done; resets.

A backup is `BACKUP_DIR/<project>-<UTC time>.sql.gz` plus a `.json` manifest (sha256, server, row counts
counted from the dump itself, last migration per app, the running code). The dump streams from the db
container through gzip into `<name>.partial`, renamed only when complete. A restore checks sha256 and the
whole gzip stream first, loads into a scratch database, checks its row counts against the manifest, then
swaps it in with one RENAME TABLE statement (atomic in MariaDB and MySQL): killed at any point before the
swap, the previous data is still there. Decisions are plain functions; `Database` sequences commands from
`lifecycle.dbclient` through the `Runner` and the streaming edge.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import secrets
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifecycle import compose as cmd
from lifecycle import dbclient, media, private
from lifecycle.dbclient import DbTools
from lifecycle.errors import UserError
from lifecycle.probes import ServiceContainer, service_container
from lifecycle.runner import CHUNK, CommandFailed, Runner, Streams
from lifecycle.settings import Settings
from lifecycle.stages import DEV, STAGES, Stage

SUFFIX = ".sql.gz"
MANUAL, AUTOMATIC = "manual", "automatic"
APP_SERVICES = tuple(stage.service for stage in STAGES if stage.serves_http)  # they run manage.py
DUMP_COMPLETED = b"-- Dump completed"  # the last comment line mysqldump and mariadb-dump write
OBJECTS_REFUSED = (
    "the backup holds views, triggers, routines or events, which the atomic table swap cannot move "
    "(load it by hand: gunzip -c FILE | invoke db.shell --root)"
)
LABEL_ZIP, LABEL_COMMIT = "io.lifecycle.code-zip.sha256", "org.opencontainers.image.revision"


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
    media: dict[str, object] = field(default_factory=dict)  # lifecycle/media.py: the media tar and its files

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
    "tables": _is_mapping(str, _is_count),
    "migrations": _is_mapping(str, lambda value: isinstance(value, str)),
    "media": media.is_part,
}


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name.removesuffix(SUFFIX) + ".json")


def backup_name(project: str, now: datetime) -> str:
    """`<project>-<UTC time to the millisecond>.sql.gz`: names sort by time (see new_backup_path)."""
    return f"{project}-{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z{SUFFIX}"


def new_backup_path(folder: Path, project: str, now: datetime) -> tuple[Path, datetime]:
    """A name no backup in folder has: two backups within one millisecond take the next free millisecond."""
    while (path := folder / backup_name(project, now)).exists():
        now += timedelta(milliseconds=1)
    return path, now


def read_manifests(folder: Path) -> list[tuple[Path, Manifest | None]]:
    """Every backup file in folder, newest first, with its manifest (None when missing or unreadable)."""
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}"), reverse=True):
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


# ---------------------------------------------------------------------------------------------- the stream
_INSERT = re.compile(rb"INSERT INTO `((?:[^`]|``)+)` VALUES")
_CREATE = re.compile(rb"CREATE TABLE `((?:[^`]|``)+)` \(")
_STRING = re.compile(rb"'[^'\\]*(?:\\.[^'\\]*)*'", re.DOTALL)


class RowCounter:
    """Counts the rows of each table in a dump as it streams by, so the manifest describes the file itself.

    Dumps hold literals only (numbers, NULL, quoted strings with newlines escaped), so once the strings are
    removed every `(` inside an INSERT statement starts a row, whether the dump puts the rows on one line
    (mysqldump) or one per line (mariadb-dump 11). Memory is bounded by the longest line, not the dump."""

    def __init__(self) -> None:
        self.tables: dict[str, int] = {}
        self.completed = False
        self._partial = b""
        self._inserting: str | None = None  # the table of the INSERT statement being read

    def feed(self, chunk: bytes) -> None:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def finish(self) -> dict[str, int]:
        if self._partial:
            self._line(self._partial)
            self._partial = b""
        return dict(self.tables)

    def _line(self, line: bytes) -> None:
        if self._inserting is None:
            if match := _INSERT.match(line):
                self._inserting = _table(match.group(1))
                line = line[match.end() :]
            else:
                if match := _CREATE.match(line):
                    self.tables.setdefault(_table(match.group(1)), 0)
                elif line.startswith(DUMP_COMPLETED):
                    self.completed = True
                return
        values = _STRING.sub(b"''", line)
        self.tables[self._inserting] = self.tables.get(self._inserting, 0) + values.count(b"(")
        if values.rstrip().endswith(b";"):
            self._inserting = None


def _table(quoted: bytes) -> str:
    return quoted.replace(b"``", b"`").decode("utf-8")


# ------------------------------------------------------------------------------ statements a restore refuses
# What a dump made by `db.backup` never holds: statements that reach beyond the one database it loads into.
_REACHING_OUT = re.compile(
    rb"\b(?:GRANT|REVOKE|PREPARE|EXECUTE|DEALLOCATE|CALL|SHUTDOWN|KILL|FLUSH|INSTALL|UNINSTALL|HANDLER|LOAD_FILE)\b"
    rb"|\b(?:CREATE|DROP|ALTER|RENAME)\s+(?:USER|ROLE|DATABASE|SCHEMA|SERVER|TABLESPACE|LOGFILE)\b"
    rb"|\bSET\s+(?:GLOBAL|PERSIST|PERSIST_ONLY|PASSWORD|ROLE|DEFAULT\s+ROLE)\b|@@(?:GLOBAL|PERSIST)\b"
    rb"|\bLOAD\s+(?:DATA|XML)\b|\bINTO\s+(?:OUTFILE|DUMPFILE)\b|\bCHANGE\s+(?:MASTER|REPLICATION)\b"
    rb"|\b(?:START|STOP)\s+(?:SLAVE|REPLICA)\b|\bDEFINER\s*=|\A\s*USE\b",
    re.IGNORECASE,
)
# A name qualified by a database (`other`.`table`, other.table): after the scan every identifier reads ``.
_QUALIFIED = re.compile(rb"(?:``|\b[A-Za-z_][\w$]*)\s*\.\s*(?:``|[A-Za-z_*])")
# What the atomic table swap cannot move (the restore refused these after loading before; now before it).
_OBJECTS = re.compile(rb"\bCREATE\b.*\b(?:TRIGGER|VIEW|PROCEDURE|FUNCTION|EVENT)\b", re.IGNORECASE | re.DOTALL)
# Where a token (string, quoted name, comment) starts in SQL code; /*! and /*M! comments are code and stay.
_OPENER = re.compile(rb"['\"`#]|--[ \t\r\n]|/\*(?![!M])")
_CLOSER = {
    b"'": re.compile(rb"[^'\\]*(?:\\.[^'\\]*)*'", re.DOTALL),  # unrolled: no backtracking per character
    b'"': re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL),
    b"`": re.compile(rb"[^`]*`"),
    b"#": re.compile(rb"[^\n]*\n"),
    b"--": re.compile(rb"[^\n]*\n"),
    b"/*": re.compile(rb".*?\*/", re.DOTALL),
}
_PLACEHOLDER = {b"'": b"''", b'"': b"''", b"`": b"``", b"#": b" ", b"--": b" ", b"/*": b" "}
_MARGIN = 4  # bytes of code held back at a chunk's end: enough to see `/*M!` or `-- ` whole in the next one
_STATEMENT_LIMIT = 1 << 20  # code (strings and names removed) checked at least this often, whatever the dump


class StatementGuard:
    """Reads a dump as it streams by and finds the first statement a backup of one database never holds: a
    right given or taken (GRANT, CREATE USER, SET GLOBAL...), a name in another database (`other`.`t`, USE),
    a file read or written by the server, a DEFINER; and views, triggers, routines and events.

    A tokenizer in constant memory: string literals, quoted names and comments are skipped by their closing
    character (even across chunks and lines), so neither a string that holds `GRANT` nor a name `it's` confuses
    it. The scan is a first refusal with a clear message; what holds against a hostile file is the restore's
    account, whose rights cover the scratch database only (`Database.restore`)."""

    def __init__(self) -> None:
        self.found: str | None = None  # what the first refused statement does, for the one-line message
        self.objects = False  # the dump creates a view, trigger, routine or event
        self.statements = 0
        self._carry = b""  # held-back code
        self._inside: bytes | None = None  # the opener of the token being skipped
        self._escaped = False  # a string's backslash ended the last chunk
        self._star = False  # a /* comment's last chunk ended with `*`
        self._code = bytearray()  # the current statement's code

    def feed(self, chunk: bytes) -> None:
        data, position = self._carry + chunk, 0
        self._carry = b""
        while position < len(data):
            if self._inside is not None:
                position = self._skip_token(data, position)
                continue
            match = _OPENER.search(data, position)
            end = match.start() if match else len(data)
            if end > len(data) - _MARGIN:  # too near the end to know what starts here: wait for the next chunk
                end = max(position, len(data) - _MARGIN)
                self._code_part(data[position:end])
                self._carry = data[end:]
                return
            self._code_part(data[position:end])
            opener = match.group()
            self._inside = b"--" if opener.startswith(b"--") else opener
            self._code.extend(_PLACEHOLDER[self._inside])
            position = match.end() if self._inside != b"--" else match.start() + 2

    def finish(self) -> None:
        self.feed(b"")
        self._code_part(self._carry)
        self._carry = b""
        self._check(bytes(self._code))
        self._code.clear()

    def _skip_token(self, data: bytes, position: int) -> int:
        opener = self._inside
        if self._escaped:  # the backslash at the end of the last chunk escapes this byte
            self._escaped, position = False, position + 1
            return position
        if self._star:
            self._star = False
            if data[position : position + 1] == b"/":
                self._inside = None
                return position + 1
        closed = _CLOSER[opener].match(data, position)
        if closed:
            self._inside = None
            return closed.end()
        rest = data[position:]
        if opener in (b"'", b'"'):
            self._escaped = (len(rest) - len(rest.rstrip(b"\\"))) % 2 == 1
        elif opener == b"/*":
            self._star = rest.endswith(b"*")
        return len(data)

    def _code_part(self, code: bytes) -> None:
        if b";" in code:
            *complete, rest = (bytes(self._code) + code).split(b";")
            for statement in complete:
                self._check(statement)
            self._code = bytearray(rest)
        else:
            self._code.extend(code)
        if len(self._code) > _STATEMENT_LIMIT:  # no `;` for a long time: check it, keep a tail for what spans
            self._check(bytes(self._code))
            del self._code[:-1024]

    def _check(self, statement: bytes) -> None:
        if not statement.strip():
            return
        self.statements += 1
        if self.found is not None:
            return
        if _OBJECTS.search(statement):
            self.objects = True
        if match := _REACHING_OUT.search(statement):
            self.found = " ".join(match.group().decode("ascii").upper().split()).rstrip("= ")
        elif _QUALIFIED.search(statement):
            self.found = "a name in another database"


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


def verify(path: Path) -> Manifest:
    """Check a backup end to end before anything is touched; the one line says what is wrong with it."""
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
    digest, tail, guard = hashlib.sha256(), b"", StatementGuard()
    try:
        for chunk in decompressed(path, digest):
            tail = (tail + chunk)[-256:]
            guard.feed(chunk)
        guard.finish()
    except (zlib.error, EOFError) as error:
        raise UserError(f"{path} is not a complete gzip stream ({error}); nothing was restored") from None
    if digest.hexdigest() != manifest.sha256:
        raise UserError(f"{path} does not match its manifest's sha256 (corrupted or changed); nothing was restored")
    if DUMP_COMPLETED not in tail:
        raise UserError(f"{path} holds an unfinished dump (no '-- Dump completed' line); nothing was restored")
    if guard.found:
        raise UserError(
            f"{path} holds a statement that reaches beyond the database it restores ({guard.found}); a backup made "
            "by invoke db.backup never does; nothing was restored"
        )
    if guard.objects:
        raise UserError(f"{path}: {OBJECTS_REFUSED}; nothing was restored")
    if manifest.media:
        media.verify(path, manifest.media)
    return manifest


# -------------------------------------------------------------------------------------- plain decisions
def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def count_rows_sql(database: str, tables: Sequence[str]) -> str:
    """One statement that counts every table's rows exactly (information_schema only estimates for InnoDB)."""
    db = sql_identifier(database)
    parts = [f"SELECT {sql_string(t)}, COUNT(*) FROM {db}.{sql_identifier(t)}" for t in tables]
    return " UNION ALL ".join(parts)


def swap_sql(live: str, scratch: str, replaced: str, live_tables: Sequence[str], new_tables: Sequence[str]) -> str:
    """Move the live tables out and the scratch tables in with ONE RENAME TABLE (all or nothing), then drop both."""
    moves = [f"{sql_identifier(live)}.{sql_identifier(t)} TO {sql_identifier(replaced)}.{sql_identifier(t)}"
             for t in live_tables]  # fmt: skip
    moves += [f"{sql_identifier(scratch)}.{sql_identifier(t)} TO {sql_identifier(live)}.{sql_identifier(t)}"
              for t in new_tables]  # fmt: skip
    statements = [
        "SET SESSION lock_wait_timeout = 60",  # a transaction holding a table makes the swap fail, not hang for a day
        f"DROP DATABASE IF EXISTS {sql_identifier(replaced)}",
        f"CREATE DATABASE {sql_identifier(replaced)}",
    ]
    if moves:
        statements.append("RENAME TABLE " + ", ".join(moves))
    statements += [f"DROP DATABASE {sql_identifier(replaced)}", f"DROP DATABASE {sql_identifier(scratch)}"]
    return "; ".join(statements)


def grant_scope(database: str) -> str:
    """The database as a GRANT names it: `_` and `%` are wildcards there, so escaped to mean themselves."""
    return sql_identifier(database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%"))


RESTORE_ACCOUNT = f"{sql_string(dbclient.RESTORE_USER)}@'localhost'"


def restore_account_sql(scratch: str, password: str) -> str:
    """The restore's temporary account (a leftover of a killed restore replaced): every right on the scratch
    database, none anywhere else, none to grant. Sent on stdin: it holds the password."""
    return (
        f"DROP USER IF EXISTS {RESTORE_ACCOUNT};\n"
        f"CREATE USER {RESTORE_ACCOUNT} IDENTIFIED BY {sql_string(password)};\n"
        f"GRANT ALL PRIVILEGES ON {grant_scope(scratch)}.* TO {RESTORE_ACCOUNT};\n"
    )


def drop_restore_account_sql() -> str:
    return f"DROP USER IF EXISTS {RESTORE_ACCOUNT}"


def count_mismatches(expected: Mapping[str, int], found: Mapping[str, int]) -> list[str]:
    names = sorted(set(expected) | set(found))
    return [f"{name}: {found.get(name, 'missing')} rows, manifest {expected.get(name, 'none')}"
            for name in names if expected.get(name) != found.get(name)]  # fmt: skip


def planned_migrations(plan_output: str) -> list[str]:
    """The `app.migration` lines of `manage.py migrate --plan` (empty when the schema is current)."""
    return re.findall(r"^\s*([A-Za-z_][\w]*\.\d{4}\w*)\s*$", plan_output, flags=re.MULTILINE)


def leading_number(text: str) -> int | None:
    match = re.match(r"\D*?(\d+)", text)
    return int(match.group(1)) if match else None


def image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def server_change(recorded: str, new_image: str) -> str | None:
    """Why `up` must back up first: DB_IMAGE's major version differs from the one recorded in the volume.

    `recorded` is the volume's record, "IMAGE VERSION" (empty: a fresh volume, or one from before records)."""
    parts = recorded.split(maxsplit=1)
    if len(parts) < 2 or parts[0] == new_image:
        return None
    old_image, old_version = parts
    old_major, new_major = leading_number(old_version), leading_number(image_tag(new_image))
    if old_major is not None and old_major == new_major:
        return None
    return f"DB_IMAGE changed from {old_image} (server {old_version}) to {new_image}"


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
            f"{head}  {manifest.kind} ({manifest.reason})  {manifest.database}: {len(manifest.tables)} tables, "
            f"{manifest.rows} rows  server {manifest.server_version}  migrations: {migrations}"
        )
    if exposed:
        lines.append(f"warning: {len(exposed)} backup(s) can be read by other users ({', '.join(exposed[:3])}"
                     f"{', ...' if len(exposed) > 3 else ''}): chmod 600 them and their .json manifests")  # fmt: skip
    return lines


def confirm_project(project: str, consequence: str, yes: bool, ask: Callable[[str], str] | None) -> None:
    """A destructive step needs --yes, or the project name typed at a terminal."""
    if yes:
        return
    if ask is None:
        raise UserError(f"{consequence} of {project}; add --yes to confirm (nothing was changed)")
    answer = ask(f"{consequence[0].upper()}{consequence[1:]} of {project}. Type the project name to confirm: ")
    if answer.strip() != project:
        raise UserError("not confirmed; nothing was changed")


# ----------------------------------------------------------------------------------------- the database
@dataclass
class Database:
    """The app database of this checkout's running `db` service."""

    settings: Settings
    run: Runner
    streams: Streams
    say: Callable[[str], None]
    dry: bool = False
    _tools: DbTools | None = None
    _seen: tuple[str, str] | None = None  # before `up`: the running db container's id and the volume's record

    @property
    def folder(self) -> Path:
        return self.settings.root / self.settings["BACKUP_DIR"]

    @property
    def volume(self) -> str:
        return f"{self.settings.project_name}_db-data"

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
        label = f"label=com.docker.compose.project={self.settings.project_name}"
        ps = cmd.docker_argv("ps", "--filter", label, "--format", PS_FORMAT)
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
        path, now = new_backup_path(self.folder, self.settings.project_name, datetime.now(UTC))
        files = media.Media(self.settings, self.run, self.streams, self.say)
        draft = Manifest(
            file=path.name, sha256="", size=0, created=now.isoformat(), kind=kind, reason=reason,
            project=self.settings.project_name, database=tools.database, server_image=running.db_image,
            server_version=version, dump_tool=tools.dump, migrations=migrations,
            code_zip_sha256=running.code_zip_sha256, commit=running.commit,
        )  # fmt: skip
        partial = path.with_name(path.name + ".partial")
        try:
            private.private_folder(self.folder)
            if files.on:  # the uploads with the rows: one backup, one manifest
                draft = replace(draft, media=files.pack(path))
            manifest = self._stream_dump(path, partial, draft, tools)
        except OSError as error:
            raise UserError(f"writing {partial} failed ({error.strerror or error}); no backup was written") from None
        finally:
            with contextlib.suppress(OSError):  # a folder that could not be made holds no partial file
                partial.unlink(missing_ok=True)
            media.Media.discard_partial(path)
        carried = f", {len(manifest.media['files'])} media file(s)" if manifest.media else ""  # type: ignore[arg-type]
        self.say(f"backup: {path} ({format_size(manifest.size)}, {len(manifest.tables)} tables, {manifest.rows} rows"
                 f"{carried}, {kind})")  # fmt: skip
        return path

    def _stream_dump(self, path: Path, partial: Path, draft: Manifest, tools: DbTools) -> Manifest:
        """Stream the dump into `partial` (gzip, sha256, row counts on the way), write the manifest, then give the
        dump its final name: only a complete dump with its manifest ever has it."""
        counter = RowCounter()
        with private.create_private(partial) as raw:  # 0600, exclusive, never through a planted link
            hashing = HashingFile(raw)
            # Level 1: a safety backup runs before every destructive step, so its speed matters more than its size.
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=1, mtime=0) as packed:

                def sink(chunk: bytes) -> None:
                    counter.feed(chunk)
                    packed.write(chunk)

                status = self.streams.stream_out(dbclient.dump(self.settings, tools), sink, env=self.settings.env)
            raw.flush()
            os.fsync(raw.fileno())
        tables = counter.finish()
        if status or not counter.completed:
            raise UserError(f"the dump failed (exit {status}, see above); no backup was written")
        manifest = replace(draft, sha256=hashing.digest.hexdigest(), size=hashing.size, tables=tables)
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
        keep = int(self.settings["BACKUP_KEEP"])
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
        files = media.Media(self.settings, self.run, self.streams, self.say)
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
        argv = cmd.compose_argv(self.settings, "exec", "--no-TTY", service, "python", "manage.py", "migrate", "--plan")
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
        argv = ["python", "manage.py", *command]
        if stage.service == running:
            return cmd.compose_argv(self.settings, "exec", "--no-TTY", stage.service, *argv)
        return cmd.run_argv(self.settings, stage, argv)

    # ------------------------------------------------------------------------- server records and guards
    def record_server(self) -> None:
        """Write "DB_IMAGE VERSION" into the data volume, for the next `up` to compare; unless the db container
        is the one that ran before `up` and the record already names DB_IMAGE (the same server: nothing new)."""
        if self.dry:
            return
        if self._seen is not None:
            seen_id, recorded = self._seen
            now = self.container()
            if now is not None and now.id == seen_id and recorded.split(maxsplit=1)[:1] == [self.settings["DB_IMAGE"]]:
                return
        try:
            version = self.query("SELECT VERSION()")[0][0]
            self._run(dbclient.write_marker(self.settings, f"{self.settings['DB_IMAGE']} {version}"))
        except (UserError, CommandFailed, IndexError) as error:  # the stack is up; only the next check is weaker
            self.say(f"warning: could not record the database server in its volume: {error}")

    def volume_exists(self) -> bool:
        return self.run(cmd.docker_argv("volume", "inspect", self.volume), warn=True, capture=True).ok

    def guard_server_change(self, *, no_backup: bool) -> None:
        """Before `up`: when DB_IMAGE's major version differs from the volume's record, back up with the old one."""
        if self.dry or not self.volume_exists():
            return
        db = self.container()
        running = db is not None and db.running
        new_image = self.settings["DB_IMAGE"]
        if running:
            reader = dbclient.read_marker(self.settings)
        else:
            reader = dbclient.read_marker_offline(self.volume, new_image)
        recorded = self._run(reader, capture=True, warn=True).strip()
        if running:
            self._seen = (db.id, recorded)
        reason = server_change(recorded, new_image)
        if reason is None:
            return
        if not no_backup and not running:
            old_image = recorded.split()[0]
            self.say(f"{reason}: starting the old server to back up first")
            started = self.run(cmd.compose_argv(self.settings, "up", "--detach", "--wait", dbclient.SERVICE),
                               env={**self.settings.env, "DB_IMAGE": old_image}, warn=True)  # fmt: skip
            if not started.ok:
                raise UserError(f"could not start {old_image} to back up the data first; set DB_IMAGE back to it, "
                                "or add --no-backup to go on without a backup")  # fmt: skip
        self.safety_backup(f"because {reason}", skip=no_backup)

    def guard_volume_deletion(self, *, no_backup: bool) -> None:
        """Before `down --volumes`: back up the data the volume holds (starting db when it is stopped)."""
        if self.dry:
            self.say("dry run: would take a safety backup of the volume first")
            return
        if not self.volume_exists():
            return
        if not no_backup and not self.is_running():
            started = self.run(cmd.compose_argv(self.settings, "up", "--detach", "--wait", dbclient.SERVICE),
                               env=self.settings.env, warn=True)  # fmt: skip
            if not started.ok:
                raise UserError("could not start the db service to back up the volume first (see above); nothing was "
                                "deleted (add --no-backup to delete it without a backup)")  # fmt: skip
        self.safety_backup("before deleting the database volume", skip=no_backup)
