"""docker/db-init/10-test-database-grants.sh with a stand-in `mysql` that prints the SQL it receives."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "db-init" / "10-test-database-grants.sh"


def run_init(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "mysql").write_text('#!/bin/sh\nprintf "argv: %s\\n" "$*"\ncat\n')
    (fake / "mysql").chmod(0o755)
    return subprocess.run(
        ["bash", str(SCRIPT)], env={"PATH": f"{fake}:/usr/bin:/bin", "MYSQL_ROOT_PASSWORD": "pw", **env},
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("user", "quoted"),
    [
        pytest.param("app", "'app'", id="a plain name"),
        pytest.param("o'brien", "'o''brien'", id="a quote is doubled"),
        pytest.param("x'@'%'; DROP DATABASE app; -- ", "'x''@''%''; DROP DATABASE app; -- '", id="an injection"),
        pytest.param("back\\slash", "'back\\\\slash'", id="a backslash is doubled"),
        pytest.param("tick`name", "'tick`name'", id="a backtick needs nothing in a string"),
        pytest.param("\\'", "'\\\\'''", id="backslash then quote"),
    ],
)
def test_where_tests_run_the_app_user_gets_test_databases_with_its_name_quoted(tmp_path, user, quoted):
    done = run_init(tmp_path, DB_TEST_DATABASES="yes", MYSQL_USER=user)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "argv: --protocol=socket -uroot",
        f"GRANT ALL PRIVILEGES ON `test\\_%`.* TO {quoted}@'%';",
    ]
    assert "pw" not in done.stdout  # the password is in the environment, never on the command line


@pytest.mark.parametrize("environ", [{}, {"DB_TEST_DATABASES": "no"}], ids=["unset (stage, prod)", "no"])
def test_stage_and_prod_volumes_get_no_test_database_grant(tmp_path, environ):
    done = run_init(tmp_path, MYSQL_USER="app", **environ)
    assert done.returncode == 0 and "GRANT" not in done.stdout and "argv" not in done.stdout
    assert "no test databases" in done.stdout


@pytest.mark.parametrize(
    ("environ", "words"),
    [({"DB_TEST_DATABASES": "true"}, "must be yes or no"), ({"DB_TEST_DATABASES": "yes"}, "MYSQL_USER is not set")],
    ids=["a value other than yes or no", "no user"],
)
def test_bad_settings_stop_the_init_in_one_line(tmp_path, environ, words):
    done = run_init(tmp_path, **environ)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and words in done.stderr
