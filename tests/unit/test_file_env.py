"""bash_files/file_env.sh, the one *_FILE rule every image sources: run by bash on the host."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parents[2] / "bash_files" / "file_env.sh"
# What each image's script does: strict mode, its own one-line die, then the helper.
SCRIPT = """set -Eeuo pipefail
die() { printf 'die: %s\\n' "$*" >&2; exit 1; }
source "$1"
file_env SECRET "${2:-}"
printf 'SECRET=%s FILE=%s' "$SECRET" "${SECRET_FILE-unset}"
"""


def file_env(env: dict[str, str], default: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", SCRIPT, "file_env", str(HELPER), default],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    return path


def test_the_variable_alone_is_kept():
    assert file_env({"SECRET": "plain"}).stdout == "SECRET=plain FILE=unset"


def test_the_file_alone_sets_the_variable_and_is_unset(secret_file):
    assert file_env({"SECRET_FILE": str(secret_file)}).stdout == "SECRET=from-file FILE=unset"


def test_an_empty_variable_with_a_file_reads_the_file(secret_file):
    """compose passes `SECRET: ${SECRET:-}` as empty when only the file is configured."""
    assert file_env({"SECRET": "", "SECRET_FILE": str(secret_file)}).stdout == "SECRET=from-file FILE=unset"


@pytest.mark.parametrize(("default", "expected"), [("", "SECRET= FILE=unset"), ("%", "SECRET=% FILE=unset")])
def test_neither_gives_the_default(default, expected):
    assert file_env({}, default).stdout == expected


def test_both_set_is_refused_with_one_line(secret_file):
    done = file_env({"SECRET": "plain", "SECRET_FILE": str(secret_file)})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "die: both SECRET and SECRET_FILE are set; set only one of them\n"


def test_an_unreadable_file_is_refused_with_one_line(tmp_path):
    done = file_env({"SECRET_FILE": str(tmp_path / "missing")})
    assert done.returncode == 1
    assert done.stderr == f"die: SECRET_FILE={tmp_path / 'missing'} is not a readable file\n"


@pytest.mark.parametrize(
    "script",
    ["bash_files/entrypoint.sh", "docker/offline/mariadb-entrypoint.sh", "docker/offline/mariadb-healthcheck.sh"],
)
def test_every_image_script_sources_the_helper_and_defines_no_copy(script):
    text = (HELPER.parents[1] / script).read_text()
    assert 'source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/file_env.sh"' in text
    assert "file_env() {" not in text
