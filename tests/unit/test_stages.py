"""lifecycle.stages: the one table of stages, and the one place a stage name is checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle.errors import UserError
from lifecycle.stages import NAMES, STAGES, Stage

CHECKOUT = Path(__file__).resolve().parents[2]
UNKNOWN = "unknown stage 'qa'; use one of: dev, test-qa, stage, prod"


def test_the_stages_in_build_order():
    assert NAMES == ("dev", "test-qa", "stage", "prod")


@pytest.mark.parametrize("name", ["dev", "test-qa", "stage", "prod"])
def test_every_stage_parses_to_its_row(name):
    stage = Stage.parse(name)
    assert stage in STAGES
    assert (stage.name, str(stage)) == (name, name)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("qa", id="a near miss"),
        pytest.param("Prod", id="another case"),
        pytest.param("", id="empty"),
        pytest.param(" prod", id="whitespace"),
    ],
)
def test_an_unknown_stage_is_one_line_naming_the_valid_ones(name):
    with pytest.raises(UserError) as error:
        Stage.parse(name)
    assert str(error.value) == UNKNOWN.replace("'qa'", repr(name))


@pytest.mark.parametrize(
    ("name", "zipped", "needs_secret_key", "serves_http", "runs_through_qa"),
    [
        pytest.param("dev", False, False, True, False, id="dev bind-mounts the code and serves"),
        pytest.param("test-qa", True, False, False, True, id="test-qa embeds the zip and runs through qa"),
        pytest.param("stage", True, True, True, False, id="stage embeds the zip and needs a key"),
        pytest.param("prod", True, True, True, False, id="prod embeds the zip and needs a key"),
    ],
)
def test_what_each_stage_means(name, zipped, needs_secret_key, serves_http, runs_through_qa):
    stage = Stage.parse(name)
    assert (stage.zipped, stage.needs_secret_key, stage.serves_http, stage.runs_through_qa) == (
        zipped,
        needs_secret_key,
        serves_http,
        runs_through_qa,
    )


def test_a_stage_is_a_frozen_value():
    with pytest.raises(AttributeError):
        Stage.parse("prod").zipped = False  # type: ignore[misc]


def test_targets_services_and_tags_exist_in_the_dockerfile_and_compose():
    dockerfile = (CHECKOUT / "docker" / "Dockerfile").read_text()
    compose = (CHECKOUT / "docker" / "compose.yaml").read_text()
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, flags=re.MULTILINE))
    for stage in STAGES:
        assert stage.target in targets
        assert re.search(
            rf"^  {re.escape(stage.service)}:\n(?:    .*\n)*?    profiles: \[{stage.profile}\]", compose, re.M
        )
        assert f"target: {stage.target}\n" in compose
        assert f":{stage.tag}" in compose
