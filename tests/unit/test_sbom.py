"""lifecycle.sbom: the summary `invoke sbom` prints, and one line when there is no SBOM to summarise."""

from __future__ import annotations

import pytest

from lifecycle import sbom
from lifecycle.errors import UserError

BOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "components": [
        {"name": "Django", "version": "5.2.19", "purl": "pkg:pypi/django@5.2.19"},
        {"name": "gunicorn", "version": "27.0.1", "purl": "pkg:pypi/gunicorn@27.0.1"},
        {"name": "libmariadb3", "version": "1:11.8.9", "purl": "pkg:deb/debian/libmariadb3@1:11.8.9?arch=amd64"},
        {"name": "bash", "version": "5.2", "purl": "pkg:deb/debian/bash@5.2?arch=amd64"},
    ],
}


def test_summary_counts_ecosystems_and_names_the_key_versions():
    assert sbom.summary(BOM, "prod") == [
        "prod: CycloneDX 1.6, 4 components (2 deb, 2 pypi)",
        "  django 5.2.19",
        "  gunicorn 27.0.1",
        "  libmariadb3 1:11.8.9",
    ]


def test_every_stage_has_an_sbom_service_and_stage_and_prod_share_theirs():
    assert set(sbom.SERVICE) == {"dev", "test-qa", "stage", "prod"}
    assert sbom.SERVICE["stage"] == sbom.SERVICE["prod"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no SBOM for prod yet (reports/sbom-prod.json); run invoke build --stage prod"),
        ("{not json", "sbom-prod.json is not JSON (Expecting property name enclosed in double quotes: line 1 "
                      "column 2 (char 1)); rebuild it: invoke build --stage prod"),
    ],
)  # fmt: skip
def test_load_says_in_one_line_what_to_do(tmp_path, content, message):
    if content is not None:
        (tmp_path / "reports").mkdir()
        sbom.report_path(tmp_path, "prod").write_text(content)
    with pytest.raises(UserError) as error:
        sbom.load(tmp_path, "prod")
    assert str(error.value) == message
