"""docgen: docs/settings.md and docs/tasks.md are generated from the settings table and the tasks' help, and
`nox -s lint` fails, naming the page and the command, when one no longer agrees with the code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import docgen
import tasks
from lifecycle.settings_table import TABLE
from tests.helpers import CHECKOUT

PAGES = [Path("docs/settings.md"), Path("docs/tasks.md")]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A tmp root with the noxfile the tasks page reads and fresh generated pages."""
    (tmp_path / docgen.SESSIONS).parent.mkdir(parents=True)
    shutil.copy(CHECKOUT / docgen.SESSIONS, tmp_path / docgen.SESSIONS)
    assert docgen.write(tasks.ns, tmp_path) == PAGES
    return tmp_path


def test_the_committed_pages_agree_with_the_code():
    assert docgen.stale(tasks.ns, CHECKOUT) == []


def test_writing_again_changes_nothing(checkout):
    assert docgen.write(tasks.ns, checkout) == []
    assert docgen.stale(tasks.ns, checkout) == []


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_an_edited_page_is_stale_in_one_line_naming_the_page_and_the_command(checkout, page):
    path = checkout / page
    path.write_text(path.read_text().replace("|", "¦", 1))
    assert docgen.stale(tasks.ns, checkout) == [f"{page} is stale: run `invoke docs` and commit it"]


def test_a_missing_page_is_stale(checkout):
    (checkout / "docs" / "tasks.md").unlink()
    assert docgen.stale(tasks.ns, checkout) == ["docs/tasks.md is stale: run `invoke docs` and commit it"]


def test_a_new_setting_makes_the_settings_page_stale(checkout, monkeypatch):
    extra = docgen.Setting("NEW_SETTING", "1", "A setting added to the table.")
    monkeypatch.setattr(docgen, "TABLE", (*TABLE, extra))
    assert docgen.stale(tasks.ns, checkout) == ["docs/settings.md is stale: run `invoke docs` and commit it"]


def test_every_setting_is_a_row_with_its_default_and_who_may_set_it():
    page = docgen.settings_page()
    for setting in TABLE:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{setting.name}` |"))
        assert (f"`{setting.default}`" if setting.default else "(empty)") in row
        assert ("`[tool.lifecycle]`" in row) == setting.project, row


def test_every_task_has_its_options_and_every_session_says_whether_it_is_opt_in():
    page = docgen.tasks_page(tasks.ns, CHECKOUT / docgen.SESSIONS)
    for name in tasks.ns.task_names:
        assert f"### `invoke {name}`" in page
    assert "| `--stage=VALUE`, `-s` | One of dev, test-qa, stage, prod. Default: dev. |" in page
    assert "| `--[no-]build`, `-b` |" in page  # a flag that is on by default
    opt_in = [s.name for s in docgen.nox_sessions(CHECKOUT / docgen.SESSIONS) if not s.default]
    assert opt_in == ["swarm", "cluster", "adopt", "bench", "audit"]
    assert "### `nox -s bench` (opt-in)" in page and "### `nox -s unit`\n" in page


def test_sessions_are_read_from_their_decorators_without_running_the_noxfile(tmp_path):
    (tmp_path / "noxfile.py").write_text(
        'import nox\n\n\n@nox.session\ndef a(session):\n    """First."""\n\n\n'
        '@nox.session(name="b-c", default=False)\ndef b(session):\n    """Second."""\n\n\n'
        "def helper():\n    raise SystemExit('never run')\n"
    )
    assert docgen.nox_sessions(tmp_path / "noxfile.py") == [
        docgen.NoxSession("a", True, "First."),
        docgen.NoxSession("b-c", False, "Second."),
    ]


def test_the_pre_commit_entry_exits_1_naming_the_stale_page(checkout, capsys):
    assert docgen.main(checkout) == 0
    (checkout / "docs" / "settings.md").write_text("old\n")
    assert docgen.main(checkout) == 1
    assert capsys.readouterr().err == "docs/settings.md is stale: run `invoke docs` and commit it\n"


def test_a_kind_column_appears_when_the_table_declares_kinds():
    from types import SimpleNamespace

    port = SimpleNamespace(name="port")
    rows = [SimpleNamespace(name="APP_PORT", default="8000", help="Host port.", project=False, kind=port)]
    page = docgen.settings_page(rows)
    assert "| Setting | Default | Meaning | Who may set it | Kind |" in page
    assert "| `APP_PORT` | `8000` | Host port. | machine: `.env`, environment | port |" in page
