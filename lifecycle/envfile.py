"""`.env` files read as `docker compose` reads them: comments, `export`, quotes, inline comments after ` #`, and
`$NAME`/`${NAME:-default}` references, strictly (a bad line is an error naming its number and KEY, never its
text: a `.env` holds secrets). Standard library only; linear in the length of every line (docs/security.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from lifecycle.errors import UserError

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
# Compose's dotenv rules: in an unquoted value, a `#` after whitespace starts a comment; `$NAME`, `${NAME}` and
# `${NAME:-default}` expand in unquoted and double-quoted values, never in single-quoted ones.
# Every pattern here does a bounded amount of work at each position, so a line costs time linear in its length
# (a `\s+#.*$` search was quadratic: 64 KiB of spaces took seconds); see docs/security.md.
_COMMENT_START = re.compile(r"\s#")
# The start of a reference: `$NAME`, or `${NAME` followed by `}`, `-` or `:-`; the closing brace is found by
# expand itself, with one forward scan for the whole value.
_REFERENCE_START = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(:?-|(?=\}))|([A-Za-z_][A-Za-z0-9_]*))")
_DOUBLE_QUOTE_ESCAPES = {"n": "\n", "r": "\r"}


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """`$NAME`, `${NAME}`, `${NAME-default}`, `${NAME:-default}` as compose expands them in `.env`; a `${` that no
    `}` closes stays as written. Linear in the value's length, however many references are left open."""
    parts: list[str] = []
    copied = searched = 0  # value[:copied] is in parts; the next reference starts at or after `searched`
    close = value.find("}")  # the first `}` at or after the current reference (-1: none is left)
    while match := _REFERENCE_START.search(value, searched):
        braced, operator, bare = match.groups()
        searched = match.end()
        if bare:
            replacement, end = lookup(bare) or "", match.end()
        else:
            if 0 <= close < match.end():
                close = value.find("}", match.end())
            if close == -1:  # no `}` closes it (nor any later `${`): it stays as written
                continue
            default, found = value[match.end() : close], lookup(braced)
            use_default = (operator == ":-" and not found) or (operator == "-" and found is None)
            replacement, end = (default if use_default else found or ""), close + 1
        parts += [value[copied : match.start()], replacement]
        copied = searched = end
    return "".join([*parts, value[copied:]])


def unescape_double_quoted(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _DOUBLE_QUOTE_ESCAPES.get(m.group(1), m.group(1)), value)


def strip_inline_comment(raw: str) -> str:
    """An unquoted value without its ` # comment` and trailing whitespace."""
    comment = _COMMENT_START.search(raw)
    return (raw[: comment.start()] if comment else raw).rstrip()


def parse_value(key: str, raw: str, lookup: Callable[[str], str | None]) -> str:
    """KEY's value as compose reads it; raises ValueError (what is wrong; what to do) when it is malformed.

    Messages name KEY, never any part of the value: a `.env` holds secrets, and errors end up in CI logs."""
    if raw[:1] not in ("'", '"'):
        return expand(strip_inline_comment(raw), lookup)
    quote = raw[0]
    end = re.search(r"(?<!\\)" + quote, raw[1:])
    if not end:
        raise ValueError(f"unterminated quote in {key}; close the quote")
    inside, rest = raw[1 : end.start() + 1], raw[end.end() + 1 :]
    if rest.strip() and not re.match(r"\s+#", rest):
        raise ValueError(f"text after the closing quote of {key}; start a comment with ' #' or move it inside")
    return inside if quote == "'" else expand(unescape_double_quoted(inside), lookup)


def env_file_lines(text: str) -> list[str]:
    """The lines as compose splits them: at `\n` only (a `\r` before it goes with the line's whitespace), never
    at the other characters `str.splitlines` splits on (`\v`, `\f`, `\x1c`-`\x1e`, `\x85`, `\u2028`, `\u2029`),
    so the suite and compose read the same value."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def parse_env_file(text: str, source: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Read `KEY=VALUE` lines as `docker compose` reads `.env` (comments, `export`, quotes, inline comments
    after ` #`, variable references from earlier lines or the environment), strictly: a bad line is an error
    that names its number (and KEY when there is one), never its text."""
    values: dict[str, str] = {}
    environ = environ or {}

    def lookup(name: str) -> str | None:
        return environ.get(name, values.get(name))

    for number, raw in enumerate(env_file_lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise UserError(
                f"{source} line {number}: expected KEY=VALUE (KEY of letters, digits and _, not starting with a "
                "digit); fix or remove that line"
            )
        key, value = match.groups()
        try:
            values[key] = parse_value(key, value, lookup)
        except ValueError as error:
            raise UserError(f"{source} line {number}: {error}") from None
        if "\0" in values[key]:
            raise UserError(f"{source} line {number}: {key} holds a NUL byte, which no variable can carry; remove it")
    return values
