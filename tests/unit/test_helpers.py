"""tests/helpers, the one package the suites share: its wait, and the rules that keep it the only way in (no test
imports a conftest, edits sys.path or loads a file by path)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import CHECKOUT
from tests.helpers.engine import wait_for
from tests.helpers.tools import assert_one_line, last_line


def test_wait_for_returns_the_first_true_answer():
    answers = iter([None, "", "ready", "later"])
    assert wait_for(lambda: next(answers), timeout=5, what="readiness", interval=0) == "ready"


def test_wait_for_fails_naming_what_it_waited_for_after_asking_at_least_once():
    asked = []
    with pytest.raises(AssertionError, match="timed out after 0s waiting for the db to turn healthy"):
        wait_for(lambda: asked.append(1), timeout=0, what="the db to turn healthy", interval=0)
    assert asked


def test_the_last_line_is_the_one_line_a_failing_task_prints():
    output = "building...\n\nerror: unknown stage 'qa'; use one of dev, test-qa, stage, prod\n\n"
    assert last_line(output) == "error: unknown stage 'qa'; use one of dev, test-qa, stage, prod"
    assert assert_one_line(output, "unknown stage", "dev") == last_line(output)
    with pytest.raises(AssertionError, match="not in the last line"):
        assert_one_line(output, "prod-only")


@pytest.mark.parametrize(
    "pattern",
    [
        r"^\s*from conftest import",
        r"^\s*import conftest",
        r"sys\.path\.(insert|append)",
        r"spec_from_file_location\([^)]*conftest",
    ],
    ids=["from-conftest", "import-conftest", "sys-path", "a-conftest-by-path"],
)
def test_no_test_reaches_its_helpers_around_the_package(pattern):
    offenders = [
        str(path.relative_to(CHECKOUT))
        for path in sorted((CHECKOUT / "tests").rglob("*.py"))
        if path.parent.name != "site" and re.search(pattern, path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    ]
    assert offenders == []
