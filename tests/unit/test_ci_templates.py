"""The CI workflow and the pre-commit hooks: local hooks only, each hook's entry exists, the workflow runs
every default nox session as its own job and uploads reports/, and both pass their own validators."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CHECKOUT = Path(__file__).resolve().parents[2]
PRE_COMMIT = CHECKOUT / ".pre-commit-config.yaml"
WORKFLOW = CHECKOUT / ".github" / "workflows" / "ci.yml"
BIN = Path(sys.executable).parent  # the tools venv: .venv locally, the session's venv under nox


def hooks() -> list[dict]:
    config = yaml.safe_load(PRE_COMMIT.read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "hooks must be local: no network at commit time"
    return config["repos"][0]["hooks"]


def test_pre_commit_runs_ruff_shellcheck_hadolint_actionlint_and_lock_freshness():
    assert [hook["id"] for hook in hooks()] == [
        "ruff-check", "ruff-format", "shellcheck", "hadolint", "actionlint", "lock-freshness", "generated-docs",
    ]  # fmt: skip
    assert all(hook["language"] == "system" for hook in hooks())


@pytest.mark.parametrize("hook", hooks(), ids=lambda hook: hook["id"])
def test_each_hook_entry_exists(hook):
    """Entries run .venv's tools: each must be a tool that requirements/tools.txt installs (so it is in this
    interpreter's bin folder too), and a module entry must be importable."""
    argv = shlex.split(hook["entry"])
    assert argv[0].startswith(".venv/bin/"), f"{hook['id']}: run the pinned tool from .venv, not {argv[0]}"
    tool = argv[0].removeprefix(".venv/bin/")
    assert (BIN / tool).is_file(), f"{hook['id']}: {tool} is not installed by requirements/tools.txt"
    if argv[1:2] == ["-m"]:
        done = subprocess.run([sys.executable, "-c", f"import {argv[2]}"], cwd=CHECKOUT, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_pre_commit_accepts_the_config():
    done = subprocess.run([str(BIN / "pre-commit"), "validate-config", str(PRE_COMMIT)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_runs_each_default_session_as_a_job_after_bootstrap_and_uploads_reports():
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["session"]
    assert job["strategy"]["matrix"]["session"] == ["lint", "unit", "qa", "e2e"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert runs.index("./scripts/bootstrap") < runs.index('.venv/bin/nox -s "${{ matrix.session }}"')
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert (upload["if"], upload["with"]["path"]) == ("always()", "reports/")


def test_actionlint_accepts_the_workflow():
    done = subprocess.run([str(BIN / "actionlint"), str(WORKFLOW)], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
