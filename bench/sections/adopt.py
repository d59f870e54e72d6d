"""Adopted projects beside django_site: `invoke adopt`, the cold prod build, the prod image over its base, a code-only
rebuild (the whole `invoke build` process) and `invoke up` to healthy, one row per measure with every project in it.

The projects' numbers come from reports/adopt.json, which `nox -s adopt` writes (tests/adopt: real projects made from
the package index, ~10 min; the bench does not run it); django_site's from this run's cold, rebuild, images and up
sections, so the cost of generality is visible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bench import facts
from bench.context import Bench, Section
from bench.evaluate import Results, Row, fmt, median
from lifecycle.stages import PROD

REPORT = "reports/adopt.json"
MEASURES = (  # key in reports/adopt.json, row key, metric, unit
    ("adopt", "adopt_time", "invoke adopt PATH", "s"),
    ("cold_prod_build", "adopt_cold_build", "first prod build (projects: cache shared; django_site: --no-cache)", "s"),
    ("image_over_base_mb", "adopt_image_over_base", "prod image over its base", "MB"),
    ("code_only_rebuild", "adopt_code_only", "code-only rebuild, whole process", "s"),
    ("up_healthy", "adopt_up_healthy", "invoke up --stage prod to healthy", "s"),
)


def measure(bench: Bench) -> dict[str, Any]:
    path = bench.settings.root / REPORT
    return {"projects": json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}}


def django_site(results: Results) -> dict[str, float | None]:
    """This run's own numbers for the same measures (django_site needs no adopt: it is the default)."""
    images = results.get("images", {})
    prod_bytes = images.get("stages", {}).get(PROD.name, {}).get("bytes")
    over = facts.added_over_base(prod_bytes, images.get("base", {}).get("bytes"))
    return {
        "adopt": None,
        "cold_prod_build": median(results.get("cold", {}).get(PROD.name, [])),
        "image_over_base_mb": None if over is None else round(facts.megabytes(over) or 0, 1),
        "code_only_rebuild": median(results.get("rebuild", {}).get("code_only", {}).get("whole", [])),
        "up_healthy": median(results.get("up", {}).get("healthy_seconds", [])),
    }


def rows(adopt: Mapping[str, Any], results: Results) -> list[Row]:
    projects = {name: found.get("times", {}) for name, found in sorted(adopt.get("projects", {}).items())}
    if not projects:
        return [Row("adopt", "adopted projects", "n/a", status="n/a", why=f"no {REPORT}: run nox -s adopt first")]
    columns = {"django_site": django_site(results), **projects}
    out = []
    for key, row_key, metric, unit in MEASURES:
        values = "; ".join(f"{name} {fmt(times.get(key), unit)}" for name, times in columns.items())
        out.append(Row(row_key, metric, values))
    failed = {name: found.get("failed") for name, found in adopt.get("projects", {}).items() if found.get("failed")}
    if failed:
        out.append(Row("adopt_failed", "steps that failed in nox -s adopt", str(failed), status="MISS"))
    return out


SECTION = Section("adopt", "adopted projects beside django_site (reports/adopt.json of nox -s adopt)", measure, rows)
