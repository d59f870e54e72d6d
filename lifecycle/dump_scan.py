"""The rows of each table in a dump as it streams by (`RowCounter`, for the manifest of a backup): on whole chunks
with the bytes methods Python runs in C (find, split, count), in constant memory whatever the size of the dump.
"""

from __future__ import annotations

import re

DUMP_COMPLETED = b"-- Dump completed"  # the last comment line mysqldump and mariadb-dump write


# ---------------------------------------------------------------------------------------------- row counts
# Where a statement the counter cares about starts: always at the start of a line (a dump escapes every newline
# inside a string, so a line never starts inside one).
_STATEMENT = re.compile(rb"^(?:INSERT INTO `((?:[^`]|``)+)` VALUES|CREATE TABLE `((?:[^`]|``)+)` \(|-- Dump completed)",
                        re.MULTILINE)  # fmt: skip
_INSERT_END = b";\n"  # an INSERT ends a line with `;`: never inside a string, which holds no raw newline


def rows_in(values: bytes) -> int:
    """The rows in a run of VALUES text that starts and ends outside a string: every `(` outside the strings opens
    one (dumps hold literals only). Escaped backslashes and quotes go first, so each `'` left opens or closes a
    string, and the parts between every other `'` are the code."""
    code = values.replace(b"\\\\", b"").replace(b"\\'", b"").split(b"'")[::2]
    return b"".join(code).count(b"(")


class RowCounter:
    """Counts the rows of each table in a dump as it streams by, so the manifest describes the file itself.

    Whether the dump puts the rows of an INSERT on one line (mysqldump) or one per line (mariadb-dump 11), only
    whole lines are read (the unfinished last line waits for the next chunk), so a run always starts and ends
    outside a string. Memory is bounded by the longest line, not the dump."""

    def __init__(self) -> None:
        self.tables: dict[str, int] = {}
        self.completed = False
        self._partial = b""
        self._inserting: str | None = None  # the table of the INSERT statement being read

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        self._lines(data, cut)

    def finish(self) -> dict[str, int]:
        if self._partial:
            data, self._partial = self._partial + b"\n", b""
            self._lines(data, len(data))
        return dict(self.tables)

    def _lines(self, data: bytes, end: int) -> None:
        """Read data[:end], whole lines."""
        position = 0
        while position < end:
            if self._inserting is not None:
                stop = data.find(_INSERT_END, position, end)
                finished = stop >= 0
                stop = stop + len(_INSERT_END) if finished else end
                self.tables[self._inserting] += rows_in(data[position:stop])
                if finished:
                    self._inserting = None
                position = stop
                continue
            match = _STATEMENT.search(data, position, end)
            if match is None:
                return
            position = match.end()
            if match.group(1) is not None:
                self._inserting = _table(match.group(1))
                self.tables.setdefault(self._inserting, 0)
            elif match.group(2) is not None:
                self.tables.setdefault(_table(match.group(2)), 0)
            else:
                self.completed = True


def _table(quoted: bytes) -> str:
    return quoted.replace(b"``", b"`").decode("utf-8")
