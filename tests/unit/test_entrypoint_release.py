"""bash_files/entrypoint.sh's release commands (RELEASE_COMMANDS, after migrate), sourced by bash on the host with a
stand-in `python` that records each call."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[2] / "bash_files" / "entrypoint.sh"
SCRIPT = """set -Eeuo pipefail
source "$1"
python() { printf 'python %s\\n' "$*"; [[ "$*" != *fails* ]]; }
run_release_commands
echo done
"""


def release(commands: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **({"RELEASE_COMMANDS": commands} if commands is not None else {})}
    return subprocess.run(
        ["bash", "-c", SCRIPT, "entrypoint", str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("commands", "calls"),
    [
        pytest.param(None, [], id="unset: nothing"),
        pytest.param("", [], id="empty: nothing"),
        pytest.param("createcachetable", ["python manage.py createcachetable"], id="one"),
        pytest.param(
            "createcachetable; clearsessions ;loaddata  initial.json",
            ["python manage.py createcachetable", "python manage.py clearsessions",
             "python manage.py loaddata initial.json"], id="several, in order, spaces trimmed",
        ),
        pytest.param(";; ;", [], id="only separators"),
    ],
)  # fmt: skip
def test_release_commands_run_as_manage_py_commands_in_order(commands, calls):
    done = release(commands)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [*calls, "done"]
    assert done.stderr.count("entrypoint: release command: manage.py") == len(calls)


def test_a_failing_release_command_stops_the_rest():
    done = release("createcachetable;fails now;clearsessions")
    assert done.returncode != 0
    assert done.stdout.splitlines() == ["python manage.py createcachetable", "python manage.py fails now"]


MAIN = """set -Eeuo pipefail
source "$1"
python() { printf 'python %s\\n' "$*"; [[ "$*" != *fails* ]]; }
wait_for_db() { echo "waited for the database"; }
main "${@:2}"
echo "not reached: release exits"
"""


def main(*argv: str, commands: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "RELEASE_COMMANDS": commands}
    return subprocess.run(
        ["bash", "-c", MAIN, "entrypoint", str(ENTRYPOINT), *argv], env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip


def test_the_release_command_migrates_then_runs_the_release_commands_and_exits():
    """What the swarm's migrate job runs (docker/stack.migrate.yaml: command ["release"]), as compose's start does."""
    done = main("release", commands="createcachetable;clearsessions")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "python -",  # check_settings
        "waited for the database",
        "python manage.py migrate --noinput",
        "python manage.py createcachetable",
        "python manage.py clearsessions",
    ]
    assert "release: migrated, release commands run" in done.stderr


def test_a_failing_release_command_fails_the_release():
    done = main("release", commands="fails now")
    assert done.returncode != 0
    assert done.stdout.splitlines()[-1] == "python manage.py fails now"
