"""The scheduler of `[[tool.lifecycle.jobs]]`, run by the release's own image (`python -m lifecycle_site.scheduler`):
compose's `STAGE-scheduler` service and the stack's `scheduler` service (lifecycle/jobs.py sets JOBS).

Exactly once comes from the database, not from the scheduler being alone: a run is started only by the scheduler
whose INSERT of the row (job, slot) succeeds (the table's primary key), so two schedulers (the old and the new
task of a rolling update, a rollback, a restart) never both run a slot. Each run is its own process (`python
manage.py COMMAND`, its own session, killed at the job's timeout); a scheduler runs one job's runs one after the
other, and a run whose scheduler died is recorded as lost by the next one to start. On start the scheduler reads
the job's last slot: slots missed while no scheduler ran follow the job's policy (lifecycle_site/jobs.py `plan`):
under "once" each runs once, late (those of the last day, the newest 60), any other is recorded ("skipped") and
logged; none is silently lost.

    python -m lifecycle_site.scheduler             the loop (SIGTERM: no new run; running ones get STOP_GRACE s)
    python -m lifecycle_site.scheduler run NAME    one run now, through the same claim (a row)
    python -m lifecycle_site.scheduler last        each job's last run, one JSON object a line
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque

from lifecycle_site.jobs import RUNS_TABLE, Job, JobError, from_json, plan, resume_after

TABLE = RUNS_TABLE
STOP_GRACE = 10  # seconds the running runs get after SIGTERM (the services' stop_grace_period is longer)
TAIL = 4000  # characters of a run's output kept in its row
KILL_AFTER = 5  # seconds between SIGTERM and SIGKILL of a run past its timeout
RESUME_WINDOW = 3600  # seconds of rows below the last claimed slot searched for a hole on start
DB_WAIT = 120  # seconds to wait for the database at start
# Touched by every turn of the loop (the health checks read its age); /dev/shm is writable in a read-only container
# everywhere, while the stack's tmpfs /tmp belongs to root.
ALIVE_FILE = "/dev/shm/scheduler.alive"
CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
  job VARCHAR(63) NOT NULL,
  slot DATETIME NOT NULL,
  manual TINYINT NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL,
  started_at DATETIME(3) NULL,
  ended_at DATETIME(3) NULL,
  duration_ms INT NULL,
  exit_code INT NULL,
  runner VARCHAR(255) NOT NULL DEFAULT '',
  output_tail TEXT NULL,
  PRIMARY KEY (job, slot, manual)
)"""
RUNNER = f"{socket.gethostname()}:{os.getpid()}"


def log(job: str, slot: dt.datetime | None, message: str) -> None:
    """One line per event on stdout (`invoke logs`), carrying the job's name and slot."""
    at = f" slot={slot:%Y-%m-%dT%H:%M:%SZ}" if slot else ""
    print(f"{utcnow():%Y-%m-%dT%H:%M:%SZ} scheduler job={job}{at} {message}", flush=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sql_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def connection():
    from django.db import connection as current

    return current


def execute(sql: str, params: tuple = ()) -> list[tuple]:
    with connection().cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def changed(sql: str, params: tuple) -> int:
    """An UPDATE's count of rows."""
    with connection().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def claim(job: Job, slot: dt.datetime, status: str, manual: bool = False) -> bool:
    """Insert the slot's row: True for the one claimant whose insert succeeds, False for any other."""
    from django.db import IntegrityError

    started = utcnow()
    try:
        execute(
            f"INSERT INTO {TABLE} (job, slot, manual, status, started_at, runner) VALUES (%s, %s, %s, %s, %s, %s)",
            (job.name, sql_time(slot), int(manual), status, sql_time(started), RUNNER),
        )
    except IntegrityError:
        return False
    return True


def finish(job: Job, slot: dt.datetime, manual: bool, status: str, code: int | None, took: float, tail: str) -> None:
    execute(
        f"UPDATE {TABLE} SET status = %s, ended_at = %s, duration_ms = %s, exit_code = %s, output_tail = %s "
        "WHERE job = %s AND slot = %s AND manual = %s",
        (status, sql_time(utcnow()), int(took * 1000), code, tail[-TAIL:], job.name, sql_time(slot), int(manual)),
    )


class Scheduler:
    def __init__(self, jobs: list[Job]):
        self.jobs = jobs
        self.stopping = threading.Event()
        self.children: set[subprocess.Popen] = set()
        self.threads: list[threading.Thread] = []
        self.busy = {job.name: threading.Lock() for job in jobs}

    # ----------------------------------------------------------------------------------- one run
    def run(self, job: Job, actions: list[tuple[dt.datetime, str]], manual: bool = False) -> str:
        """Claim every slot of the plan at once, in order (so each has its row now), then run those this scheduler
        got one after the other, each in its own process; the last row's final status."""
        status = "none"
        try:
            if self.stopping.is_set() and not manual:
                return status  # nothing claimed: the next scheduler runs these slots, or records them as missed
            mine = [(slot, action) for slot, action in actions if self.claim_slot(job, slot, action, manual)]
            for slot, action in mine:
                status = self.run_claimed(job, slot, action, manual)
        finally:
            connection().close()
        return status

    def claim_slot(self, job: Job, slot: dt.datetime, action: str, manual: bool) -> bool:
        """Whether this scheduler got the slot to run (a skipped slot is recorded, never run)."""
        if action == "skip":
            if claim(job, slot, "skipped"):
                log(job.name, slot, f"skipped: missed while no scheduler ran (policy {job.missed})")
            return False
        if not claim(job, slot, "running", manual):
            log(job.name, slot, "claimed by another scheduler; not run here")
            return False
        return True

    def run_claimed(self, job: Job, slot: dt.datetime, action: str, manual: bool) -> str:
        # A run waits for this scheduler's previous run of the job (each ends by its timeout): a slow run delays
        # the next slots instead of dropping them. Not a database lock: a scheduler whose container or node
        # vanished leaves its connection, and such a lock, open on the server for hours.
        with self.busy[job.name]:
            if self.stopping.is_set() and not manual:
                finish(job, slot, manual, "interrupted", None, 0, "the scheduler stopped before the run started")
                log(job.name, slot, "interrupted: the scheduler stopped before the run started")
                return "interrupted"
            return self.execute_run(job, slot, action, manual)

    def execute_run(self, job: Job, slot: dt.datetime, action: str, manual: bool) -> str:
        how = {"late": "late (missed while no scheduler ran; policy once)", "run": "on time"}.get(action, action)
        log(job.name, slot, f"start: manage.py {' '.join(job.command)} ({how}, timeout {job.timeout}s)")
        env = {**os.environ, "JOB_NAME": job.name, "JOB_SLOT": f"{slot:%Y-%m-%dT%H:%M:%SZ}", "JOB_RUN": action}
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "manage.py", *job.command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, text=True, errors="replace",
        )  # fmt: skip
        self.children.add(child)
        tail: deque[str] = deque(maxlen=200)
        reader = threading.Thread(target=self.relay, args=(job, slot, child, tail), daemon=True)
        reader.start()
        status = self.wait(child, job.timeout)
        reader.join(timeout=KILL_AFTER)
        self.children.discard(child)
        took = time.monotonic() - started
        if status == "ok" and child.returncode != 0:
            status = "interrupted" if self.stopping.is_set() and child.returncode < 0 else "failed"
        if status == "ok" and action == "late":
            status = "late-ok"
        finish(job, slot, manual, status, child.returncode, took, "".join(tail))
        log(job.name, slot, f"end: {status} (exit {child.returncode}) in {took:.1f}s")
        return status

    @staticmethod
    def relay(job: Job, slot: dt.datetime, child: subprocess.Popen, tail: deque[str]) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            tail.append(line)
            log(job.name, slot, f"| {line.rstrip()}")

    def wait(self, child: subprocess.Popen, timeout: float) -> str:
        try:
            child.wait(timeout=timeout)
            return "ok"
        except subprocess.TimeoutExpired:
            stop(child)
            return "timeout"

    # ----------------------------------------------------------------------------------- the loop
    def last_slot(self, job: Job) -> dt.datetime | None:
        """Where to resume (lifecycle_site/jobs.py `resume_after`), from the job's rows of the last RESUME_WINDOW."""
        rows = execute(
            f"SELECT slot FROM {TABLE} WHERE job = %s AND manual = 0 AND slot >= "
            f"(SELECT MAX(slot) FROM {TABLE} WHERE job = %s AND manual = 0) - INTERVAL {RESUME_WINDOW} SECOND",
            (job.name, job.name),
        )
        return resume_after(job.schedule, {slot.replace(tzinfo=dt.UTC) for (slot,) in rows})

    def mark_lost(self) -> None:
        """Rows left `running` by a scheduler that died: every run ends by its timeout, so one still running
        after it (and the stop grace, and a minute) has nobody left to finish it."""
        for job in self.jobs:
            before = sql_time(utcnow() - dt.timedelta(seconds=job.timeout + STOP_GRACE + KILL_AFTER + 60))
            lost = changed(
                f"UPDATE {TABLE} SET status = 'lost' WHERE job = %s AND status = 'running' AND started_at < %s",
                (job.name, before),
            )
            if lost:
                log(job.name, None, f"{lost} run(s) left running by a scheduler that stopped: recorded as lost")

    def start(self) -> dict[str, dt.datetime]:
        execute(CREATE)
        self.mark_lost()
        now = utcnow()
        cursors = {}
        for job in self.jobs:
            last = self.last_slot(job)
            cursors[job.name] = last or now
            since = f"last slot {last:%Y-%m-%dT%H:%M:%SZ}" if last else "no run yet"
            log(job.name, None, f"scheduled {job.schedule.text!r}, missed: {job.missed}, {since}")
        connection().close()
        return cursors

    def loop(self) -> None:
        cursors = self.start()
        while not self.stopping.is_set():
            touch(ALIVE_FILE)
            now = utcnow()
            for job in self.jobs:
                decided = plan(job.schedule, job.missed, cursors[job.name], now)
                cursors[job.name] = now
                if decided.dropped:
                    log(job.name, None, f"{decided.dropped} older missed slots not recorded (more than the newest "
                                        "1000); none runs")  # fmt: skip
                if decided.actions:
                    thread = threading.Thread(target=self.run, args=(job, decided.actions), daemon=True)
                    thread.start()
                    self.threads.append(thread)
            self.threads = [thread for thread in self.threads if thread.is_alive()]
            soonest = min(job.schedule.next_after(now) for job in self.jobs)
            self.stopping.wait(min(1.0, max(0.05, (soonest - utcnow()).total_seconds())))
        self.drain()

    def drain(self) -> None:
        deadline = time.monotonic() + STOP_GRACE
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for child in list(self.children):
            stop(child)
        for thread in self.threads:
            thread.join(timeout=KILL_AFTER + 1)


def touch(path: str) -> None:
    with open(path, "a", encoding="utf-8"):
        os.utime(path)


def stop(child: subprocess.Popen) -> None:
    """SIGTERM to the run's whole session, SIGKILL KILL_AFTER seconds later."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=KILL_AFTER)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for_database() -> None:
    from django.db import OperationalError

    deadline = time.monotonic() + DB_WAIT
    while True:
        try:
            execute("SELECT 1")
            return
        except OperationalError as error:
            connection().close()
            if time.monotonic() > deadline:
                raise SystemExit(f"scheduler: the database is not reachable after {DB_WAIT}s: {error}") from None
            time.sleep(1)


def last_runs(jobs: list[Job]) -> None:
    for job in jobs:
        rows = execute(
            f"SELECT slot, status, duration_ms, started_at FROM {TABLE} WHERE job = %s AND status <> 'skipped' "
            "ORDER BY started_at DESC LIMIT 1", (job.name,),
        )  # fmt: skip
        if rows:
            slot, status, duration, _ = rows[0]
            print(json.dumps({"job": job.name, "slot": f"{slot:%Y-%m-%d %H:%M:%S}", "status": status,
                              "duration_ms": duration}), flush=True)  # fmt: skip


def main(argv: list[str]) -> int:
    try:
        jobs = from_json(os.environ.get("JOBS", ""))
    except JobError as error:
        print(f"scheduler: {error}", file=sys.stderr)
        return 2
    import django

    django.setup()
    wait_for_database()
    execute(CREATE)
    if argv[:1] == ["last"]:
        last_runs(jobs)
        return 0
    if argv[:1] == ["run"] and len(argv) == 2:
        chosen = [job for job in jobs if job.name == argv[1]]
        if not chosen:
            names = ", ".join(job.name for job in jobs) or "none"
            print(f"scheduler: no job {argv[1]!r}; the declared jobs: {names} (invoke jobs.list)", file=sys.stderr)
            return 2
        now = utcnow().replace(microsecond=0)  # a slot is a whole second (DATETIME): else the run's row never ends
        status = Scheduler(jobs).run(chosen[0], [(now, "manual")], manual=True)
        return 0 if status == "ok" else 1
    if argv:
        print("usage: python -m lifecycle_site.scheduler [run NAME | last]", file=sys.stderr)
        return 2
    if not jobs:
        print("scheduler: no jobs declared (JOBS is empty); nothing to do", file=sys.stderr)
        return 2
    scheduler = Scheduler(jobs)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: scheduler.stopping.set())
    scheduler.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
