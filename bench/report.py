"""Rendering: the rows as an aligned terminal table and as reports/bench.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.evaluate import Row

COLUMNS = ("Metric", "Value", "Target", "Result", "Why / what it would take")
META_LABELS = (
    ("Date", "date"),
    ("Runs (medians of)", "runs"),
    ("nproc", "nproc"),
    ("Load average at start / end", "loadavg"),
    ("Docker", "docker"),
    ("Compose", "compose"),
    ("Python base image", "base_image"),
    ("Database image", "db_image"),
    ("Load generator", "load_generator"),
    ("Commit", "commit"),
    ("Notes", "notes"),
)


def _cells(row: Row) -> list[str]:
    why = row.why
    if row.status == "MISS":
        why = " — ".join(part for part in (why, row.note and f"note: {row.note}") if part)
    return [row.metric, row.value, row.target, row.status, why]


def render_table(rows: Sequence[Row], why_width: int = 70) -> str:
    """The terminal table: aligned columns, the reason cut to `why_width` characters (full text is in the files)."""
    cells = [list(COLUMNS)] + [_cells(row) for row in rows]
    cells = [[*c[:4], c[4] if len(c[4]) <= why_width else c[4][: why_width - 1] + "…"] for c in cells]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    misses = sum(row.status == "MISS" for row in rows)
    passes = sum(row.status == "PASS" for row in rows)
    lines = ["# Benchmark (`nox -s bench`)", ""]
    for label, key in META_LABELS:
        if meta.get(key) not in (None, ""):
            value = meta[key]
            value = "; ".join(value) if isinstance(value, list) else value
            lines.append(f"- **{label}:** {_md(str(value))}")
    lines += ["", f"Targets: {passes} PASS, {misses} MISS.", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for row in rows:
        lines.append("| " + " | ".join(_md(cell) for cell in _cells(row)) + " |")
    return "\n".join(lines) + "\n"
