"""`invoke qa --changed` in a copy of the checkout (issue 27): the first run is the whole suite, a one-line change in
a view runs only the tests that reach that view, and a change that breaks an import still fails. The testmon data
lives on the copy's own volume, which `invoke clean --volumes` removes.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers.checkout import copy_checkout
from tests.helpers.engine import docker, unique_name
from tests.helpers.tools import last_line, run_tool

pytestmark = pytest.mark.integration

VIEW = "django_site/notes/views.py"
QA_TIMEOUT = 900  # seconds: the first run builds test-qa (cached layers, a new code layer)


def collected(output: str) -> tuple[int, int]:
    """(tests run, tests deselected) from pytest's summary line."""
    summary = [line for line in output.splitlines() if re.search(r"=+ .*\b(passed|failed|no tests ran)\b", line)][-1]
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (passed|failed|error|deselected)", summary)}
    return counts.get("passed", 0) + counts.get("failed", 0) + counts.get("error", 0), counts.get("deselected", 0)


def test_qa_changed_runs_what_a_change_affects_and_a_broken_import_fails(engine, tmp_path):
    root = copy_checkout(tmp_path / "checkout")
    env = {"PROJ_NAME": unique_name("it"), "COMPOSE_PROJECT_NAME": unique_name("it")}
    volume = f"{env['COMPOSE_PROJECT_NAME']}-testmon"

    def qa_changed():
        return run_tool("invoke", "qa", "--changed", env=env, cwd=root, timeout=QA_TIMEOUT)

    try:
        first = qa_changed()
        assert first.returncode == 0, first.stdout[-4000:]
        assert "the whole suite runs" in first.stdout
        everything, _ = collected(first.stdout)
        assert everything > 20, first.stdout[-3000:]

        view = root / VIEW
        view.write_text(
            view.read_text().replace(
                "    return Note.objects.all()[:NEWEST_NOTES_SHOWN]",
                "    newest = Note.objects.all()\n    return newest[:NEWEST_NOTES_SHOWN]",
            )
        )
        second = qa_changed()
        assert second.returncode == 0, second.stdout[-4000:]
        ran, deselected = collected(second.stdout)
        assert 0 < ran < everything and deselected, f"ran {ran} of {everything}:\n{second.stdout[-3000:]}"
        assert "the whole suite runs" not in second.stdout

        view.write_text("import no_such_module_of_the_test\n" + view.read_text())
        broken = qa_changed()
        assert broken.returncode != 0, broken.stdout[-4000:]
        assert "No module named 'no_such_module_of_the_test'" in broken.stdout
        assert last_line(broken.stdout).startswith("qa: pytest exited"), broken.stdout[-2000:]
        assert docker("volume", "inspect", volume, check=False).returncode == 0, "the data outlives each run"
    finally:
        cleaned = run_tool("invoke", "clean", "--volumes", "--yes", "--no-backup", env=env, cwd=root, timeout=300)
        assert docker("volume", "inspect", volume, check=False).returncode != 0, cleaned.stdout[-3000:]
