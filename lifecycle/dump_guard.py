"""The scan a dump passes before a restore loads it: the first statement a backup of one database never holds
(a right given or taken, a name in another database, a file the server reads or writes, a DEFINER), and whether
it creates views, triggers, routines or events, which the atomic table swap cannot move. `verify`
(lifecycle/backup_file.py) feeds it the whole decompressed stream.
"""

from __future__ import annotations

import re

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
_CLOSER = {  # the quotes: _closing_quote
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
    account, whose rights cover the scratch database only (`Restore.restore`, lifecycle/restore.py)."""

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
        if opener in (b"'", b'"'):  # the bulk of a dump: one `find` per string, not a regex step per byte
            end = _closing_quote(data, position, opener)
        else:
            end = closed.end() if (closed := _CLOSER[opener].match(data, position)) else None
        if end is not None:
            self._inside = None
            return end
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


def _closing_quote(data: bytes, position: int, quote: bytes) -> int | None:
    """Just after the quote that closes the string being skipped from `position` (None: not in data). A quote after
    an odd run of backslashes is escaped. `find` runs in C: a long string costs one call, not one step per byte."""
    while (found := data.find(quote, position)) >= 0:
        start = found
        while start > position and data[start - 1] == 0x5C:  # the backslashes right before it
            start -= 1
        if (found - start) % 2 == 0:
            return found + 1
        position = found + 1
    return None
