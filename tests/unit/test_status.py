"""`invoke status`: probes as argv, their answers parsed, and the report as a table of facts -> lines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from lifecycle import status
from lifecycle.commands import dbclient, docker, openssl, swarm
from lifecycle.jobs import SUMMARY_SQL, LastRun, no_runs_table, parse_summary
from lifecycle.status import Container, Facts, Line, Service

NOW = dt.datetime(2026, 12, 4, 8, 0, 0, tzinfo=dt.UTC)
RELEASE = "127.0.0.1:5000/shop@sha256:" + "a" * 64
OLD = "127.0.0.1:5000/shop@sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (docker.compose_containers_argv("shop"),
         ["docker", "container", "ls", "--quiet", "--filter", "label=com.docker.compose.project=shop",
          "--filter", "is-task=false"]),  # a release's task inherits its image's compose labels
        (swarm.stack_service_rows("shop"),
         ["docker", "service", "ls", "--filter", "label=com.docker.stack.namespace=shop",
          "--format", "{{.Name}}\t{{.Replicas}}\t{{.Image}}"]),
        (openssl.end_date(Path("/x/server.crt")), ["openssl", "x509", "-enddate", "-noout", "-in", "/x/server.crt"]),
        (docker.image_tag_ids_argv(["shop:prod"]),
         ["docker", "image", "inspect", "--format", "{{index .RepoTags 0}}\t{{.Id}}", "shop:prod"]),
    ],
)  # fmt: skip
def test_argv(argv, expected):
    assert argv == expected


def test_parsers():
    assert status.parse_services("shop_app\t2/3\tx@sha256:1\nshop_proxy\t1/1 (max 1 per node)\thaproxy\nbad\n") == [
        Service("shop_app", 2, 3, "x@sha256:1"),
        Service("shop_proxy", 1, 1, "haproxy"),
    ]
    assert status.parse_end_date("notAfter=Mar  4 07:00:00 2027 GMT\n") == dt.datetime(2027, 3, 4, 7, tzinfo=dt.UTC)
    assert status.parse_end_date("garbage") is None
    line = "prod\trunning\thealthy\tsha256:1234567890abcdef\tshop:prod\tc1\n"
    assert status.parse_containers(line) == [Container("prod", "running", "healthy", "sha256:1234567890abcdef",
                                                       "shop:prod", "c1")]  # fmt: skip


def healthy_facts(**changes) -> Facts:
    facts = Facts(
        "shop",
        containers=[
            Container("prod", "running", "healthy", "sha256:new1234567890", "shop:prod", "c1"),
            Container("db", "running", "healthy", "sha256:db", "mysql:8.4", "c2"),
        ],
        built={"shop:prod": "sha256:new1234567890"},
        services=[Service("shop_app", 3, 3, RELEASE)],
        release=RELEASE,
        pending=[],
        migrations_where="prod",
        cert_end=NOW + dt.timedelta(days=300),
        backup_created=NOW - dt.timedelta(hours=3),
        maintenance={"compose": False},
    )
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def wrong(facts: Facts) -> list[str]:
    return [line.show() for line in status.report(facts, NOW) if not line.ok]


def test_a_healthy_site_is_all_ok():
    assert wrong(healthy_facts()) == []


@pytest.mark.parametrize(
    ("changes", "fix"),
    [
        pytest.param({"containers": [Container("prod", "running", "unhealthy", "i", "shop:prod", "c1")]},
                     "FIX compose prod: unhealthy; run: invoke logs --service prod", id="unhealthy"),
        pytest.param({"containers": [Container("prod", "exited", "", "i", "shop:prod", "c1")]},
                     "FIX compose prod: exited; run: invoke up --stage prod", id="stopped"),
        pytest.param({"built": {"shop:prod": "sha256:newer"}}, "runs an older build than shop:prod; run: invoke up",
                     id="an older build runs"),
        pytest.param({"services": [Service("shop_app", 3, 3, OLD)]}, "is not the last release", id="not the release"),
        pytest.param({"services": [Service("shop_app", 1, 3, RELEASE)]}, "1/3 running; run: invoke deploy.status",
                     id="replicas missing"),
        pytest.param({"pending": ["notes.0002_x"]}, "1 pending in prod: notes.0002_x; run: invoke manage migrate",
                     id="pending migrations"),
        pytest.param({"pending": None}, "unknown (prod health does not say)", id="migrations unknown"),
        pytest.param({"backup_created": None}, "FIX backup: none yet; run: invoke db.backup", id="no backup"),
        pytest.param({"backup_created": NOW - dt.timedelta(days=3)}, "last one 3 d old; run: invoke db.backup",
                     id="old backup"),
        pytest.param({"cert_end": NOW + dt.timedelta(days=5)}, "expires 2026-12-09 (5 days)", id="cert expires soon"),
        pytest.param({"cert_end": None}, "certificate: unreadable", id="no cert"),
        pytest.param({"maintenance": {"swarm": True}}, "maintenance (swarm): ON", id="maintenance on"),
        pytest.param({"lock": "ann@ci (pid 1) since 2026-12-04T07:00:00Z: deploy x"}, "invoke deploy.unlock",
                     id="deploy lock held"),
    ],
)  # fmt: skip
def test_each_wrong_line_says_what_to_run(changes, fix):
    lines = wrong(healthy_facts(**changes))
    assert len(lines) == 1 and fix in lines[0], lines
    assert "; run: " in lines[0]


def test_outside_swarm_mode_and_with_nothing_running():
    facts = Facts("shop", cert_end=NOW + dt.timedelta(days=100), backup_created=NOW, pending=[])
    shown = [line.show() for line in status.report(facts, NOW)]
    assert "ok  swarm: not a swarm manager: no stack" in shown and "ok  compose: nothing running" in shown


def test_json_and_text():
    lines = [Line("backup", False, "none yet", "invoke db.backup"), Line("jobs", True, "none configured")]
    data = json.loads(status.as_json(lines, 0.4321))
    assert data["ok"] is False and data["seconds"] == 0.432
    assert data["lines"][0] == {"name": "backup", "ok": False, "text": "none yet", "fix": "invoke db.backup"}
    assert status.as_text(lines, 0.4).splitlines()[-1] == "2 checks, 1 to fix (0.4 s)"


@pytest.mark.parametrize(
    ("code", "body", "pending"),
    [
        (200, '{"status": "ok", "database": "reachable"}', []),
        (503, '{"status": "migrations pending", "pending": ["notes.0002_x"]}', ["notes.0002_x"]),
        (503, '{"status": "database unreachable"}', None),
        (0, "connection refused", None),
        (502, "<html>bad gateway</html>", None),
    ],
)
def test_pending_migrations_from_the_apps_health_answer(code, body, pending):
    assert status.pending_from_health(code, body) == pending


def test_health_probe_of_a_closed_port_says_nothing_answered():
    code, why = status.get_health("http://127.0.0.1:9/health")
    assert code == 0 and why


# ------------------------------------------------------------------------------------------ scheduled jobs
LOGS = "invoke logs --service prod-scheduler"


@pytest.mark.parametrize(
    ("runs", "unknown", "shown"),
    [
        pytest.param({}, "", ["ok  job tick: no run yet", "ok  job tock: no run yet"], id="no run yet"),
        pytest.param(
            {"tick": LastRun("ok", "2026-12-04T07:59:50Z", 0), "tock": LastRun("late-ok", "2026-12-04T07:59:40Z", 0)},
            "",
            ["ok  job tick: last 2026-12-04T07:59:50Z ok", "ok  job tock: last 2026-12-04T07:59:40Z late-ok"],
            id="all well",
        ),
        pytest.param(
            {"tick": LastRun("failed", "2026-12-04T07:59:50Z", 1), "tock": LastRun("ok", "2026-12-04T07:59:40Z", 3)},
            "",
            [
                f"FIX job tick: last 2026-12-04T07:59:50Z failed; run: {LOGS} (run it now: invoke jobs.run tick)",
                "FIX job tock: last 2026-12-04T07:59:40Z ok; 3 of the last day's slots failed or did not run; "
                f"run: {LOGS}",
            ],
            id="a failed run, a lost or skipped slot",
        ),
        pytest.param(None, "", ["ok  jobs: 2 declared; no database of this project runs here"], id="nothing runs"),
        pytest.param(
            None,
            "ERROR 2002: can't connect",
            ["FIX jobs: last runs unknown: ERROR 2002: can't connect; run: invoke jobs.list"],
            id="the database did not answer",
        ),
    ],
)
def test_each_jobs_last_run_and_what_to_run_when_it_went_wrong(runs, unknown, shown):
    facts = Facts("shop", jobs=["tick", "tock"], job_runs=runs, jobs_unknown=unknown, jobs_logs=LOGS)
    assert [line.show() for line in status.job_lines(facts)] == shown


def test_no_jobs_declared_is_one_ok_line():
    assert [line.show() for line in status.job_lines(Facts("shop"))] == ["ok  jobs: none configured"]


def test_the_jobs_summary_rows_and_a_missing_table():
    text = "tick\tok\t2026-12-04T07:59:50Z\t0\ntock\tfailed\t2026-12-04T07:59:40Z\t2\nWarning: something\n"
    assert parse_summary(text) == {"tick": LastRun("ok", "2026-12-04T07:59:50Z", 0),
                                   "tock": LastRun("failed", "2026-12-04T07:59:40Z", 2)}  # fmt: skip
    assert no_runs_table("ERROR 1146 (42S02) at line 1: Table 'app.lifecycle_job_runs' doesn't exist")
    assert not no_runs_table("ERROR 2002 (HY000): Can't connect to server")


def test_the_summary_query_runs_as_the_app_user_in_the_db_container():
    argv = dbclient.app_query("c0ffee", SUMMARY_SQL)
    assert argv[:6] == ["docker", "exec", "c0ffee", "sh", "-c", dbclient.APP_QUERY] and argv[6:] == ["sh", SUMMARY_SQL]
    assert "MYSQL_PASSWORD_FILE" in dbclient.APP_QUERY and '--user="$MYSQL_USER"' in dbclient.APP_QUERY
    assert swarm.task_containers("shop", "db") == [
        "docker", "container", "ls", "--quiet", "--filter", "label=com.docker.swarm.service.name=shop_db"]  # fmt: skip
