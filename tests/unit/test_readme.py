"""README.md, the front door, and the pages it leads to: the Quick start's two commands (the second is what `.ci/run`
runs); every task and session in the generated docs/tasks.md and every setting in docs/settings.md, checked against
the real `invoke --list` and `nox --list`; every `invoke NAME` and `nox -s NAME` the README and docs/ name exists; every
link to a page in docs/ resolves; the Layout table names every module of the library."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lifecycle.settings_table import TABLE
from tests.helpers import CHECKOUT

README = CHECKOUT / "README.md"
DOCS = CHECKOUT / "docs"

pytestmark = pytest.mark.skipif(not README.is_file(), reason="no README.md in this checkout yet")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    """The non-empty lines of the first fenced code block under `## Quick start`."""
    section = readme().split("\n## Quick start", 1)[1]
    block = re.search(r"^```[^\n]*\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert block, "no code block under ## Quick start"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_holds_exactly_two_commands():
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert all(not line.lstrip().startswith(("#", "$")) for line in commands)


def test_ci_runs_the_second_quick_start_command():
    """Run `.ci/run`'s own extraction function (copied out of the script) on this README."""
    script = (CHECKOUT / ".ci" / "run").read_text(encoding="utf-8")
    function = re.search(r"^readme_test_command\(\) \{\n.*?^\}\n", script, flags=re.MULTILINE | re.DOTALL)
    assert function, ".ci/run has no readme_test_command function"
    done = subprocess.run(
        ["bash", "-c", f"{function.group(0)}\nreadme_test_command"],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == quick_start_commands()[1]


def listed(*argv: str, pattern: str) -> list[str]:
    done = subprocess.run(
        [str(CHECKOUT / ".venv" / "bin" / argv[0]), *argv[1:]],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = re.findall(pattern, done.stdout, flags=re.MULTILINE)
    assert names, done.stdout
    return names


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def invoke_tasks() -> list[str]:
    return listed("invoke", "--list", pattern=r"^  (\S+)(?: \([^)]*\))?\s{2,}\S")


def nox_sessions() -> list[str]:
    return listed("nox", "--list", pattern=r"^[*-] (\S+) ")


def test_every_task_is_in_the_task_reference():
    assert [name for name in invoke_tasks() if f"### `invoke {name}`" not in page("tasks.md")] == []


def test_every_nox_session_is_in_the_task_reference_and_in_the_readme():
    sessions = nox_sessions()
    assert [name for name in sessions if f"### `nox -s {name}`" not in page("tasks.md")] == []
    assert [name for name in sessions if f"`nox -s {name}`" not in readme()] == []


def test_every_setting_is_in_the_settings_reference():
    assert [s.name for s in TABLE if f"| `{s.name}` |" not in page("settings.md")] == []


def test_every_task_and_session_the_pages_name_exists():
    """`invoke NAME` and `nox -s NAME` in the README and docs/ name real tasks and sessions (a rename shows up)."""
    tasks, sessions = set(invoke_tasks()) | {"deploy"}, set(nox_sessions())  # `invoke deploy` is deploy.deploy
    texts = {"README.md": readme(), **{f"docs/{p.name}": p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")}}
    texts["docs/adopt.md"] = texts["docs/adopt.md"].split("\n## What is not done yet", 1)[
        0
    ]  # proposals name future tasks
    unknown = set()
    for name, text in texts.items():
        named = {t for t in re.findall(r"`invoke ([a-z][\w.-]*\w)\b(?![.*])", text)}  # not a family (`swarm.*`)
        unknown |= {(name, f"invoke {t}") for t in named if t not in tasks}
        unknown |= {(name, f"nox -s {s}") for s in re.findall(r"`nox -s ([a-z][\w-]*)", text) if s not in sessions}
    assert sorted(unknown) == []


def test_every_link_to_a_page_resolves():
    """Relative links in the README and docs/ point at files that exist (the reference moved out of the README)."""
    pages = [README, *sorted(DOCS.glob("*.md"))]
    broken = []
    for path in pages:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if not re.match(r"^[a-z]+:", target) and not (path.parent / target).exists():
                broken.append(f"{path.relative_to(CHECKOUT)} -> {target}")
    assert broken == []


def named_in_layout(module: Path, layout: str) -> bool:
    """A module by its path (`lifecycle/x.py`) or its file name (`x.py`, beside its neighbours in a row); a module of
    a subpackage also by name in its package's row (`lifecycle/commands/` ... `compose`)."""
    path = str(module.relative_to(CHECKOUT))
    if f"`{path}`" in layout or f"`{module.name}`" in layout:
        return True
    package = f"`{module.parent.relative_to(CHECKOUT)}/`"
    rows = [line for line in layout.splitlines() if line.startswith(f"| {package}")]
    return module.parent.name != "lifecycle" and any(f"`{module.stem}`" in row for row in rows)


def test_the_layout_table_names_every_module():
    layout = readme().split("\n## Layout", 1)[1]
    modules = sorted(p for p in (CHECKOUT / "lifecycle").rglob("*.py") if p.stem != "__init__")
    assert [str(m.relative_to(CHECKOUT)) for m in modules if not named_in_layout(m, layout)] == []
    for front in ("tasks.py", "noxfile.py", "docgen.py", "bench/", "tests/", "docs/"):
        assert f"`{front}`" in layout


def test_the_readme_stays_a_front_door():
    """What it is, Quick start, using it on your own project, everyday commands, tests, where to read on, layout."""
    headings = re.findall(r"^## (.+)$", readme(), flags=re.MULTILINE)
    assert headings == [
        "Quick start", "Use it on your own project", "Everyday commands", "Tests", "Where to read on", "Layout",
    ]  # fmt: skip
    assert len(readme().splitlines()) < 250


def guarantees() -> list[tuple[str, str]]:
    """(group heading, bullet) for every guarantee in docs/guarantees.md."""
    pairs, group = [], ""
    for block in re.split(r"\n(?=- |\*\*|#)", page("guarantees.md")):
        if block.startswith(("**", "#")):
            group = block.split("\n", 1)[0]
        elif block.startswith("- "):
            pairs.append((group, block))
    return pairs


TEST_REFERENCE = re.compile(r"`((?:tests/[\w/]+/)?test_\w+\.py)(?:::(\w+))?`|`(tests/\w+/)`")


def test_every_guarantee_names_the_tests_that_prove_it_and_they_exist():
    """Each guarantee, or the group it is in, names its test files (file.py or file.py::test); each one exists."""
    files = {p.name: p for p in (CHECKOUT / "tests").rglob("test_*.py")}
    unproven, missing = [], []
    for group, bullet in guarantees():
        references = TEST_REFERENCE.findall(group + bullet)
        if not references:
            unproven.append(bullet[:80])
        for file, function, folder in references:
            path = (CHECKOUT / file) if "/" in file else files.get(file)
            if folder:
                path = CHECKOUT / folder
            if path is None or not path.exists():
                missing.append(file or folder)
            elif function and not re.search(rf"^def {function}\(", path.read_text(encoding="utf-8"), flags=re.M):
                missing.append(f"{file}::{function}")
    assert len(guarantees()) > 40
    assert unproven == [] and missing == []


def test_where_to_read_on_leads_to_every_page():
    section = readme().split("\n## Where to read on", 1)[1].split("\n## ", 1)[0]
    assert [p.name for p in sorted(DOCS.glob("*.md")) if f"(docs/{p.name})" not in section] == []
