"""The bench's adopt rows: every adopted project beside django_site, one row per measure (reports/adopt.json)."""

from __future__ import annotations

from bench.facts import MB
from bench.sections import adopt

RESULTS = {
    "cold": {"prod": [60.0, 62.0, 61.0]},
    "rebuild": {"code_only": {"whole": [1.2, 1.4, 1.3]}},
    "images": {"base": {"bytes": 120 * MB}, "stages": {"prod": {"bytes": 200 * MB}}},
    "up": {"healthy_seconds": [5.0]},
}
PROJECTS = {
    "startproject": {"times": {"adopt": 0.8, "cold_prod_build": 70.1, "image_over_base_mb": 85.2,
                               "code_only_rebuild": 1.6, "up_healthy": 6.3}, "failed": []},
    "wagtail": {"times": {"adopt": 1.1}, "failed": ["build"]},
}  # fmt: skip


def by_key(rows):
    return {row.key: row for row in rows}


def test_each_measure_has_django_site_and_every_project_side_by_side():
    rows = by_key(adopt.rows({"projects": PROJECTS}, RESULTS))
    assert rows["adopt_time"].value == "django_site n/a; startproject 0.8 s; wagtail 1.1 s"
    assert rows["adopt_cold_build"].value == "django_site 61.0 s; startproject 70.1 s; wagtail n/a"
    assert rows["adopt_image_over_base"].value == "django_site 80.0 MB; startproject 85.2 MB; wagtail n/a"
    assert rows["adopt_code_only"].value == "django_site 1.3 s; startproject 1.6 s; wagtail n/a"
    assert rows["adopt_up_healthy"].value == "django_site 5.0 s; startproject 6.3 s; wagtail n/a"
    assert rows["adopt_failed"].status == "MISS" and "wagtail" in rows["adopt_failed"].value


def test_without_the_report_one_row_says_how_to_get_it():
    (row,) = adopt.rows({"projects": {}}, RESULTS)
    assert row.status == "n/a" and "run nox -s adopt first" in row.why
