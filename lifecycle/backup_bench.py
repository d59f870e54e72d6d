"""Backup and restore numbers for `nox -s bench`: MB/s of `invoke db.backup` / `db.restore` side by side with a
plain `dump | gzip` and `gunzip | client` in the same db container, and the invoke process's peak memory.

`measure` needs this settings' stack up (its db service running); it generates the data with one SQL statement,
runs the plain tools and the tasks, and removes what it made. `rows` turns the numbers into bench rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lifecycle import dbclient
from lifecycle.bench import Row, _check, _fmt
from lifecycle.runner import Runner
from lifecycle.settings import Settings

TARGETS = {"throughput_ratio": 0.9, "peak_mb": 100.0}
TABLE = "bench_backup_data"
PLAIN_FILE = "/tmp/bench-plain.sql.gz"
PLAIN_DATABASE = "bench_plain"
# Runs invoke inside this interpreter, so ru_maxrss is the invoke process's own peak (not its children's).
IN_PROCESS = (
    "import json, resource, runpy, sys; sys.argv = ['invoke', *sys.argv[1:]]; code = 0\n"
    "try:\n    runpy.run_module('invoke', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
    "print(json.dumps({'code': code, 'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), "
    "file=sys.stderr)"
)


def generate_sql(megabytes: int) -> str:
    """About `megabytes` MB of table data in one statement: 1 kB rows of hex text (gzip halves it, like real data)."""
    rows = megabytes * 1000
    return (
        f"SET SESSION max_recursive_iterations = {rows + 1}; DROP TABLE IF EXISTS {TABLE}; "
        f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, payload TEXT); "
        f"INSERT INTO {TABLE} SELECT n, REPEAT(SHA2(n, 256), 16) FROM (WITH RECURSIVE seq(n) AS "
        f"(SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {rows}) SELECT n FROM seq) AS s"
    )


def invoke_in_process(root: Path, env: Mapping[str, str], *args: str) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, *args], cwd=root, env=dict(env), capture_output=True,
                          text=True, check=False)  # fmt: skip
    seconds = time.monotonic() - started
    report = json.loads(done.stderr.strip().splitlines()[-1])
    if report["code"] not in (0, None):
        raise RuntimeError(f"invoke {' '.join(args)} failed: {done.stderr[-500:]}")
    return seconds, report


def measure(settings: Settings, run: Runner, megabytes: int = 200) -> dict[str, Any]:
    """Time the plain tools and the tasks on the same generated data; peak memory of each task's process."""
    env = settings.env
    tools = dbclient.choose_tools(run(dbclient.probe(settings), env=env, capture=True).stdout)

    def sql(statement: str) -> str:
        return run(dbclient.sql(settings, tools, statement, tools.database), env=env, capture=True).stdout

    with tempfile.TemporaryDirectory(prefix="bench-backups-") as folder:
        task_env = {**env, "BACKUP_DIR": folder}
        try:
            sql(generate_sql(megabytes))
            size = int(sql(f"SELECT SUM(LENGTH(payload)) + 4 * COUNT(*) FROM {TABLE}").strip())
            started = time.monotonic()
            run(dbclient.plain_dump_to_file(settings, tools, PLAIN_FILE), env=env)
            plain_backup = time.monotonic() - started
            sql(f"CREATE DATABASE {PLAIN_DATABASE}")
            started = time.monotonic()
            run(dbclient.plain_load_from_file(settings, tools, PLAIN_FILE, PLAIN_DATABASE), env=env)
            plain_restore = time.monotonic() - started
            backup_s, backup_report = invoke_in_process(settings.root, task_env, "db.backup")
            (path,) = Path(folder).glob("*.sql.gz")
            restore_s, restore_report = invoke_in_process(
                settings.root, task_env, "db.restore", str(path), "--yes", "--no-backup"
            )
        finally:
            sql(f"DROP TABLE IF EXISTS {TABLE}; DROP DATABASE IF EXISTS {PLAIN_DATABASE}")
            run(dbclient.remove_file(settings, PLAIN_FILE), env=env, warn=True)
    return {
        "data_bytes": size,
        "plain_backup_s": plain_backup,
        "plain_restore_s": plain_restore,
        "backup_s": backup_s,
        "restore_s": restore_s,
        "backup_peak_kb": backup_report["maxrss_kb"],
        "restore_peak_kb": restore_report["maxrss_kb"],
    }


def rows(results: Mapping[str, Any]) -> list[Row]:
    megabytes = results["data_bytes"] / 1e6
    out = []
    for step, plain in (("backup", "plain_backup_s"), ("restore", "plain_restore_s")):
        ours, theirs = megabytes / results[f"{step}_s"], megabytes / results[plain]
        ratio = ours / theirs
        ok = ratio >= TARGETS["throughput_ratio"]
        out.append(Row(
            f"db_{step}_throughput", f"db.{step} of {megabytes:.0f} MB vs plain tools",
            f"{ours:.1f} vs {theirs:.1f} MB/s ({ratio:.0%})", f"≥ {TARGETS['throughput_ratio']:.0%}", _check(ok),
            "" if ok else f"{step} verifies (sha256, gzip, row counts) and swaps; the plain pipe does not",
        ))  # fmt: skip
        peak = results[f"{step}_peak_kb"] / 1024
        ok = peak <= TARGETS["peak_mb"]
        out.append(Row(f"db_{step}_peak", f"peak memory of invoke db.{step}", _fmt(peak, "MB"),
                       f"≤ {TARGETS['peak_mb']:g} MB", _check(ok)))  # fmt: skip
    return out


def main(argv: list[str]) -> int:
    """`python -m lifecycle.backup_bench [MB]`: the rows for this checkout's running stack (default 200 MB)."""
    from lifecycle.bench import render_table
    from lifecycle.runner import SubprocessRunner
    from lifecycle.settings import load_settings

    results = measure(load_settings(), SubprocessRunner(echo=False), int(argv[0]) if argv else 200)
    print(render_table(rows(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
