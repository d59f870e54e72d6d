"""Scheduled jobs under compose, real engine: the prod stage's scheduler runs each slot exactly once across a
restart and two schedulers at once, and a slot missed while no scheduler ran follows the job's policy (a late run
once, or skipped), recorded and logged; `invoke jobs.run` and `jobs.list` go through the same rows.

Two jobs every 2 s write a row per run (`job_ticks`: job, slot, how); the scheduler's own rows
(`lifecycle_job_runs`) say what happened to every slot. The checks are on the rows, never on timing."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest

from tests.helpers import jobs
from tests.helpers.checkout import IsolatedCheckout, copy_checkout
from tests.helpers.engine import docker, unique_name
from tests.helpers.tools import UP_TIMEOUT

pytestmark = pytest.mark.integration

STEP = 5  # seconds between two slots of each job: more than a run takes on a loaded machine (~5 s)
JOBS = jobs.declaration("tick", STEP, "once") + jobs.declaration("tock", STEP, "skip")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedCheckout]:
    """A copy of the checkout with the two jobs declared, its prod stage up (with its scheduler)."""
    root = copy_checkout(tmp_path_factory.mktemp("jobs") / "checkout")
    with (root / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(JOBS)
    project = IsolatedCheckout.new(root=root)
    try:
        done = project.invoke_combined("up", "--stage", "prod", timeout=UP_TIMEOUT)
        assert done.returncode == 0, done.stdout[-4000:]
        yield project
    finally:
        project.remove()


def sql(site: IsolatedCheckout, query: str) -> list[list[str]]:
    """Rows of a query, as the app's database user, in the running db container."""
    done = docker(
        "exec", site.container("db"), "sh", "-c",
        'MYSQL_PWD="$(cat "$MYSQL_PASSWORD_FILE")" mysql -u"$MYSQL_USER" -N -B -e "$1" "$MYSQL_DATABASE"', "_", query,
    )  # fmt: skip
    return [line.split("\t") for line in done.stdout.splitlines()]


def runs(site: IsolatedCheckout, job: str) -> dict[dt.datetime, str]:
    """The scheduler's rows of a job's scheduled slots: slot -> status."""
    return jobs.claims(sql(site, jobs.CLAIMS.format(job=job)))


def wait_for_slots(site: IsolatedCheckout, job: str, count: int, timeout: float = 120) -> None:
    """Until `count` more runs of the job have finished, skipped slots not counted (deadline: timeout seconds)."""
    done = lambda: sum(status not in ("running", "skipped") for status in runs(site, job).values())  # noqa: E731
    target, deadline = done() + count, time.monotonic() + timeout
    while done() < target:
        assert time.monotonic() < deadline, f"{job}: fewer than {count} more slots finished in {timeout}s"
        time.sleep(0.5)


def assert_every_slot_exactly_once(site: IsolatedCheckout, job: str) -> dict[dt.datetime, str]:
    claimed = runs(site, job)
    written = [slot for (slot,) in sql(site, jobs.WRITTEN.format(job=job))]
    assert jobs.exactly_once_problems(claimed, written, STEP) == [], job
    return claimed


def test_every_slot_runs_once_across_a_restart_and_two_schedulers(site):
    """As in a rolling update: a second scheduler starts beside the first, the first restarts meanwhile, the second
    goes away again; every slot ran once, none was skipped."""
    wait_for_slots(site, "tick", 2)
    second = unique_name("it-scheduler")
    started = site.invoke("compose", f"run --detach --no-deps --name {second} prod-scheduler", "--stage", "prod")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        wait_for_slots(site, "tick", 3)
        docker("restart", "--time", "20", site.container("prod-scheduler"))
        wait_for_slots(site, "tick", 3)
        runners = sql(site, "SELECT DISTINCT SUBSTRING_INDEX(runner, ':', 1) FROM lifecycle_job_runs")
        assert len(runners) >= 2, "only one scheduler claimed slots while two ran"
        lost = docker("logs", second).stdout + site.invoke("logs", "--service", "prod-scheduler").stdout
    finally:
        docker("rm", "--force", second, check=False)
    assert "claimed by another scheduler; not run here" in lost  # both tried each slot; one ran it
    wait_for_slots(site, "tick", 2)  # the restarted one alone again
    for job in ("tick", "tock"):
        statuses = assert_every_slot_exactly_once(site, job)
        assert "skipped" not in statuses.values(), f"{job}: a slot was skipped although a scheduler ran"


def test_slots_missed_while_no_scheduler_ran_follow_the_policy(site):
    scheduler = site.container("prod-scheduler")
    docker("stop", "--time", "20", scheduler)
    stopped = time.monotonic()
    while time.monotonic() - stopped < 25:  # well past the scheduler's 10 s grace: several slots are missed
        time.sleep(1)
    docker("start", scheduler)
    wait_for_slots(site, "tick", 2)
    once, skip = (assert_every_slot_exactly_once(site, job) for job in ("tick", "tock"))
    # tick (once): every missed slot ran once, late (none skipped); tock (skip): skipped, none late
    assert list(once.values()).count("late-ok") >= 2 and "skipped" not in once.values()
    assert "late-ok" not in skip.values() and list(skip.values()).count("skipped") >= 2
    logs = site.invoke("logs", "--service", "prod-scheduler", "--tail", "200").stdout
    assert "skipped: missed while no scheduler ran (policy skip)" in logs
    assert "late (missed while no scheduler ran; policy once)" in logs


def test_jobs_run_and_list_go_through_the_same_rows(site):
    ran = site.invoke("jobs.run", "tick", "--stage", "prod")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    manual = "SELECT COUNT(*) FROM lifecycle_job_runs WHERE job = 'tick' AND manual = 1 AND status = 'ok'"
    assert sql(site, manual) == [["1"]]
    assert sql(site, "SELECT COUNT(*) FROM job_ticks WHERE job = 'tick' AND how = 'manual'") == [["1"]]
    unknown = site.invoke("jobs.run", "nope", "--stage", "prod")
    assert unknown.returncode == 1 and "no job 'nope'; the declared jobs: tick, tock" in unknown.stderr
    listed = site.invoke("jobs.list", "--stage", "prod")
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if line.startswith(("tick ", "tock "))]
    assert len(lines) == 2 and all(" last: 20" in line and " next: 20" in line for line in lines), listed.stdout


def test_status_shows_each_jobs_last_run_and_what_to_run(site):
    """After the missed slots above: tock (policy skip) has skipped slots in the last day, which `invoke status`
    flags with the command that shows the scheduler's log; tick's line is its last run."""
    done = site.invoke("status", "--json")
    data = json.loads(done.stdout)
    lines = {line["name"]: line for line in data["lines"]}
    assert lines["job tick"]["text"].startswith("last 20"), lines["job tick"]
    tock = lines["job tock"]
    assert not tock["ok"] and "of the last day's slots failed or did not run" in tock["text"], tock
    assert tock["fix"] == "invoke logs --service prod-scheduler"
    assert done.returncode == 1  # something to fix
