"""lifecycle.sbom: the summary `invoke sbom` prints, and one line when there is no SBOM to summarise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lifecycle import sbom
from lifecycle.errors import UserError
from lifecycle.stages import STAGES

CHECKOUT = Path(__file__).resolve().parents[2]

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


def test_stage_and_prod_share_their_sbom_image_and_ship_it_and_only_dev_has_the_debugger():
    assert [(s.name, s.sbom, s.carries_sbom, s.has_debugger) for s in STAGES] == [
        ("dev", "sbom-dev", False, True),
        ("test-qa", "sbom-test-qa", False, False),
        ("stage", "sbom-runtime", True, False),
        ("prod", "sbom-runtime", True, False),
    ]


def test_every_sbom_image_is_a_compose_service_and_a_dockerfile_stage():
    compose = yaml.safe_load((CHECKOUT / "docker" / "compose.yaml").read_text())["services"]
    dockerfile = (CHECKOUT / "docker" / "Dockerfile").read_text()
    for stage in STAGES:
        assert compose[stage.sbom]["build"]["target"] == stage.sbom
        assert compose[stage.sbom]["image"] == f"${{COMPOSE_PROJECT_NAME}}:{stage.sbom}"  # the checkout's own name
        assert f" AS {stage.sbom}\n" in dockerfile


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
