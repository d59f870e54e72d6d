"""Backup and restore of a generated database: MB/s of `invoke db.backup` and `invoke db.restore` side by side
with a plain `dump | gzip` and `gunzip | client` in the same db container, and the invoke process's peak memory.

Only the db service runs, under a compose project of its own (`<bench>-backup`), removed with its volume after the
section; the data is one generated table.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.context import Bench, Section, say, timed
from bench.evaluate import Results, Row, judged, median
from lifecycle.commands import compose, dbclient

BACKUP_TARGETS = {"db_throughput_ratio": 0.9, "db_peak_mb": 100.0}
MEGABYTES = 200
TABLE = "bench_backup_data"
PLAIN_FILE = "/tmp/bench-plain.sql.gz"
PLAIN_DATABASE = "bench_plain"
# Runs invoke inside this interpreter, so ru_maxrss is the invoke process's own peak (not its children's);
# the last stdout line reports it.
IN_PROCESS = (
    "import json, resource, runpy, sys; sys.argv = ['invoke', *sys.argv[1:]]; code = 0\n"
    "try:\n    runpy.run_module('invoke', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
    "print(json.dumps({'code': code, 'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))"
)


BACKUP_WHY = (
    "the dump crosses docker exec to the host, where Python counts its rows (gzip and sha256 in a second thread); "
    "the plain pipe never leaves the container; plus ~6 probes (tools, version, migrations, running image, binlog)"
)
RESTORE_WHY = (
    "a sha256 read before anything is touched, the load through docker exec into a scratch database with every "
    "statement scanned on the way, exact row counts and the atomic swap; the plain pipe does none of it"
)


PHYSICAL_BACKUP_WHY = (
    "mariadb-backup copies the data files (no SQL), then the file is proved: unpacked, prepared and served by a "
    "throwaway server that counts the rows"
)
PHYSICAL_RESTORE_WHY = (
    "the same proof again (sha256, prepare, counts) before the db service stops; then a copy into the data volume, "
    "renames, and the server's start until healthy"
)


def generate_sql(megabytes: int) -> str:
    """About `megabytes` MB of table data in one statement: 1 kB rows of hex text."""
    rows = megabytes * 1000
    return (
        f"SET SESSION max_recursive_iterations = {rows + 1}; DROP TABLE IF EXISTS {TABLE}; "
        f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, payload TEXT); "
        f"INSERT INTO {TABLE} SELECT n, REPEAT(SHA2(n, 256), 16) FROM (WITH RECURSIVE seq(n) AS "
        f"(SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {rows}) SELECT n FROM seq) AS s"
    )


def measure(bench: Bench, megabytes: int | None = None) -> dict[str, Any]:
    with bench.own_project("backup") as settings:  # its own database volume: never the up section's or a stack's
        bench.undo.append(lambda: bench.run(compose.down_argv(settings, volumes=True), env=settings.env, warn=True))
        return measure_in(bench, megabytes or bench.backup_mb)


def measure_in(bench: Bench, megabytes: int) -> dict[str, Any]:
    settings, run, env = bench.settings, bench.run, bench.env
    run(compose.start_db_argv(settings), env=env)
    tools = dbclient.choose_tools(run(dbclient.probe(settings), env=env, capture=True).stdout)

    def sql(statement: str) -> str:
        return run(dbclient.sql(settings, tools, statement, tools.database), env=env, capture=True).stdout

    def invoke(*args: str, folder: str) -> tuple[float, int]:
        argv = [sys.executable, "-c", IN_PROCESS, *args]
        seconds, result = timed(lambda: run(argv, env={**bench.process_env(), "BACKUP_DIR": folder}, capture=True))
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if report["code"] not in (0, None):
            raise RuntimeError(f"invoke {' '.join(args)} exited {report['code']}")
        return seconds, report["maxrss_kb"]

    measured: dict[str, Any] = {name: [] for name in ("plain_backup_s", "plain_restore_s", "backup_s", "restore_s",
                                                      "backup_peak_kb", "restore_peak_kb", "physical_backup_s",
                                                      "physical_restore_s")}  # fmt: skip
    physical = tools.dump == "mariadb-dump"  # mariadb-backup: MariaDB images only
    try:
        sql(generate_sql(megabytes))
        measured["data_bytes"] = int(sql(f"SELECT SUM(LENGTH(payload)) + 4 * COUNT(*) FROM {TABLE}").strip())
        for _ in range(bench.runs):
            seconds, _ = timed(lambda: run(dbclient.plain_dump_to_file(settings, tools, PLAIN_FILE), env=env))
            measured["plain_backup_s"].append(seconds)
            sql(f"DROP DATABASE IF EXISTS {PLAIN_DATABASE}; CREATE DATABASE {PLAIN_DATABASE}")
            seconds, _ = timed(lambda: run(dbclient.plain_load_from_file(settings, tools, PLAIN_FILE, PLAIN_DATABASE),
                                           env=env))  # fmt: skip
            measured["plain_restore_s"].append(seconds)
            with tempfile.TemporaryDirectory(prefix="bench-backups-") as folder:
                # The binlogs of the generated data, copied as the cron line's `db.backup --binlogs` would have:
                # the timed backup copies only what was written since (as a backup on a schedule does).
                invoke("db.backup", "--binlogs", folder=folder)
                seconds, peak = invoke("db.backup", folder=folder)
                measured["backup_s"].append(seconds)
                measured["backup_peak_kb"].append(peak)
                (path,) = Path(folder).glob("*.sql.gz")
                seconds, peak = invoke("db.restore", str(path), "--yes", "--no-backup", folder=folder)
                measured["restore_s"].append(seconds)
                measured["restore_peak_kb"].append(peak)
                if physical:  # the same data, the other method, beside it
                    measured["physical_backup_s"].append(invoke("db.backup", "--physical", folder=folder)[0])
                    (path,) = Path(folder).glob("*.mbstream.gz")
                    seconds, _ = invoke("db.restore", str(path), "--yes", "--no-backup", folder=folder)
                    measured["physical_restore_s"].append(seconds)
            say(f"db backup/restore {megabytes} MB: plain {measured['plain_backup_s'][-1]:.1f}/"
                f"{measured['plain_restore_s'][-1]:.1f} s, tasks {measured['backup_s'][-1]:.1f}/"
                f"{measured['restore_s'][-1]:.1f} s")  # fmt: skip
    finally:
        sql(f"DROP TABLE IF EXISTS {TABLE}; DROP DATABASE IF EXISTS {PLAIN_DATABASE}")
        run(dbclient.remove_file(settings, PLAIN_FILE), env=env, warn=True)
    return measured


def rows(measured: Mapping[str, Any], results: Results) -> list[Row]:
    megabytes = measured["data_bytes"] / 1e6
    out = []
    for step, why in (("backup", BACKUP_WHY), ("restore", RESTORE_WHY)):
        ours, plain = median(measured[f"{step}_s"]), median(measured[f"plain_{step}_s"])
        ratio = plain / ours
        row = judged(f"db_{step}_throughput", f"invoke db.{step} of {megabytes:.0f} MB / plain tools", ratio * 100,
                     BACKUP_TARGETS["db_throughput_ratio"] * 100, unit="%", digits=0, at_least=True,
                     why=why)  # fmt: skip
        row.value = f"{megabytes / ours:.1f} vs {megabytes / plain:.1f} MB/s ({ratio:.0%})"
        out.append(row)
        peak = max(measured[f"{step}_peak_kb"]) / 1024
        out.append(judged(f"db_{step}_peak", f"peak memory of invoke db.{step}", peak, BACKUP_TARGETS["db_peak_mb"],
                          unit="MB"))  # fmt: skip
    if measured.get("physical_backup_s"):
        out.extend(physical_rows(measured, megabytes))
    return out


def physical_rows(measured: Mapping[str, Any], megabytes: float) -> list[Row]:
    """The physical method's seconds beside the logical one's, at the same size (informational: no target)."""
    out = []
    for step, why in (("backup", PHYSICAL_BACKUP_WHY), ("restore", PHYSICAL_RESTORE_WHY)):
        physical, logical = median(measured[f"physical_{step}_s"]), median(measured[f"{step}_s"])
        out.append(Row(f"db_physical_{step}_s", f"invoke db.{step} (physical) of {megabytes:.0f} MB",
                       f"{physical:.1f} s vs logical {logical:.1f} s", why=why))  # fmt: skip
    return out


SECTION = Section("backup", f"db.backup/db.restore (logical and physical) of {MEGABYTES} MB (--backup-mb) vs plain "
                  "tools", measure, rows, BACKUP_TARGETS)  # fmt: skip
