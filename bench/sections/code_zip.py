"""`invoke zip`: how long packing the code takes, and how big the zip is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.context import Bench, Section, timed
from bench.evaluate import Results, Row, fmt, median


def measure(bench: Bench) -> dict[str, Any]:
    seconds, result = [], None
    for _ in range(bench.runs):
        elapsed, result = timed(bench.suite.zip)
        seconds.append(elapsed)
    return {"seconds": seconds, "files": result.file_count, "bytes": result.size}


def rows(zipped: Mapping[str, Any], results: Results) -> list[Row]:
    size = fmt((zipped.get("bytes") or 0) / 1000, "kB")
    value = f"{fmt(median(zipped.get('seconds', [])), 's', 2)}, {zipped.get('files', '?')} files, {size}"
    return [Row("zip", "invoke zip", value)]


SECTION = Section("zip", "invoke zip, timed", measure, rows)
