"""Target evaluation: measurements -> rows (value, target, PASS/MISS, why), and the maintainer's notes kept.

Each section turns its own measurements into rows (`Section.rows`, next to its `measure`); this module
holds the row type, the helpers they share, and the loop over the sections.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.context import Section

Results = Mapping[str, Any]  # bench.json: "meta", one key per section measured, "errors"


@dataclass
class Row:
    key: str
    metric: str
    value: str
    target: str = ""
    status: str = "info"  # PASS, MISS, info, n/a
    why: str = ""  # a reason detected automatically
    note: str = ""  # why / what it would take: the maintainer fills this in (kept across runs)


def median(values: Iterable[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str = "s", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def judged(
    key: str,
    metric: str,
    value: float | None,
    limit: float,
    *,
    unit: str = "s",
    digits: int = 1,
    at_least: bool = False,
    why: str = "",
) -> Row:
    """A row with a target: PASS within `limit` (an upper bound, or lower with `at_least`); `why` only on a MISS."""
    ok = None if value is None else (value >= limit if at_least else value <= limit)
    target = f"{'≥' if at_least else '≤'} {limit:g} {unit}".rstrip()
    return Row(key, metric, fmt(value, unit, digits), target, verdict(ok), why if ok is False else "")


def load_hint(results: Results) -> str:
    """The machine's load, for the reasons of time misses on a shared machine."""
    meta = results.get("meta", {})
    load = meta.get("loadavg_start")
    return f"shared machine: {meta.get('nproc', '?')} cores, load average {load} at start" if load else ""


def evaluate(results: Results, sections: Sequence[Section]) -> list[Row]:
    """The table: each measured section's rows in section order, then one row per section that failed."""
    rows = [
        row for section in sections if section.name in results for row in section.rows(results[section.name], results)
    ]
    for name, message in results.get("errors", {}).items():
        rows.append(Row(f"error_{name}", f"{name}: not measured", "error", status="n/a", why=message[:200]))
    return rows


def carry_notes(rows: list[Row], previous: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Keep the maintainer's notes from the previous reports/bench.json, by row key."""
    notes = {row.get("key"): row.get("note", "") for row in previous if isinstance(row, Mapping)}
    for row in rows:
        row.note = row.note or notes.get(row.key, "") or ""
    return rows
