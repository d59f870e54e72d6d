"""docker/compose.yaml and the swarm stack files hold some values twice: they must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lifecycle import health
from lifecycle.settings_table import DEFAULTS, LAYER_PARTS

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def load(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text(encoding="utf-8"))


COMPOSE = load("compose.yaml")["services"]
STACK = load("stack.yaml")
APP = STACK["services"]["app"]
MIGRATE = load("stack.migrate.yaml")["services"]["migrate"]
SCHEDULER = load("stack.jobs.yaml")["services"]["scheduler"]
DB = load("stack.db.yaml")["services"]["db"]
# Read from files in the swarm, from the environment in compose: the one intended difference.
AS_FILES = {"DB_PASSWORD": "DB_PASSWORD_FILE", "DJANGO_SECRET_KEY": "DJANGO_SECRET_KEY_FILE"}


def test_app_environment_matches_compose_prod():
    prod = COMPOSE["prod"]["environment"]
    for name, value in prod.items():
        if value is None or name in {"DJANGO_MIGRATE", "DB_HOST", "DB_PORT"}:
            continue  # passed on only when set; the swarm's own choices (below)
        stack_name = AS_FILES.get(name, name)
        assert stack_name in APP["environment"], f"{name} of compose prod is missing in the swarm app"
        if name not in AS_FILES:
            assert APP["environment"][name] == value, name
    assert APP["environment"]["DJANGO_MIGRATE"] == "false"  # replicas never migrate: the job does
    assert APP["environment"]["DB_HOST"] == "${DB_HOST:-db}"  # an external database is a setting


def test_no_secret_value_in_the_app_environment():
    assert not any(name in APP["environment"] for name in AS_FILES)
    assert all(path.startswith("/run/secrets/") for name, path in APP["environment"].items() if name.endswith("_FILE"))


def test_the_migrate_job_runs_like_the_app():
    assert MIGRATE["environment"] == APP["environment"]
    assert MIGRATE["secrets"] == APP["secrets"]
    assert MIGRATE["image"] == APP["image"]
    for key in ("read_only", "tmpfs", "cap_drop", "init", "networks"):
        assert MIGRATE[key] == APP[key], key
    assert MIGRATE["deploy"]["mode"] == "replicated-job"
    # The entrypoint's `release`: migrate, then RELEASE_COMMANDS (tests/unit/test_entrypoint_release.py).
    assert MIGRATE["command"] == ["release"]
    assert MIGRATE["environment"]["RELEASE_COMMANDS"] == "${RELEASE_COMMANDS:-}"


def test_the_scheduler_runs_like_the_app_one_replica_overlapping_on_updates():
    assert SCHEDULER["environment"] == APP["environment"]
    assert SCHEDULER["secrets"] == APP["secrets"]
    assert SCHEDULER["image"] == APP["image"]
    for key in ("read_only", "tmpfs", "cap_drop", "init", "networks"):
        assert SCHEDULER[key] == APP[key], key
    assert SCHEDULER["command"] == ["python", "-m", "lifecycle_site.scheduler"]
    assert SCHEDULER["deploy"]["replicas"] == 1
    assert SCHEDULER["deploy"]["update_config"]["order"] == "start-first"  # the database claim makes overlap safe


def test_the_containers_get_the_health_path_and_the_layer_switches_in_compose_and_the_stack():
    """[tool.lifecycle]'s health-path and [tool.lifecycle.layer] reach every container that runs the project."""
    names = ["HEALTH_PATH", *(f"LAYER_{part}" for part in LAYER_PARTS)]
    for where, environment in [
        ("compose prod", COMPOSE["prod"]["environment"]),
        ("compose dev", COMPOSE["dev"]["environment"]),
        ("compose test-qa", COMPOSE["test-qa"]["environment"]),
        ("stack app", APP["environment"]),
    ]:
        assert {name: environment.get(name) for name in names} == {
            name: f"${{{name}:-{DEFAULTS[name]}}}" for name in names
        }, where
    assert COMPOSE["proxy"]["environment"]["HEALTH_PATH"] == STACK["services"]["proxy"]["environment"]["HEALTH_PATH"]


@pytest.mark.parametrize("key", ["test", "timeout"])
def test_app_health_check_matches_compose(key):
    assert APP["healthcheck"][key] == COMPOSE["prod"]["healthcheck"][key]


def seconds(value: str) -> int:
    """`60s`, or `${NAME:-180}s` as compose reads it without NAME."""
    return int(re.sub(r"\$\{\w+:-(\d+)\}", r"\1", value).rstrip("s"))


# The stack's health timing is the settings' (APP_HEALTH_*, APP_*_MONITOR), with their defaults as the fallback.
TIMING = {
    ("healthcheck", "start_period"): "APP_HEALTH_START_PERIOD",
    ("healthcheck", "interval"): "APP_HEALTH_INTERVAL",
    ("healthcheck", "retries"): "APP_HEALTH_RETRIES",
    ("update_config", "monitor"): "APP_UPDATE_MONITOR",
    ("rollback_config", "monitor"): "APP_ROLLBACK_MONITOR",
}


@pytest.mark.parametrize(("where", "name"), TIMING.items(), ids=TIMING.values())
def test_app_health_timing_is_the_settings(where, name):
    block, key = where
    value = APP["healthcheck"][key] if block == "healthcheck" else APP["deploy"][block][key]
    unit = "" if key == "retries" else "s"
    assert value == f"${{{name}:-{DEFAULTS[name]}}}{unit}"


def default(name: str) -> int:
    return int(DEFAULTS[name])


SLOW_START_S = 20  # a release that warms up this long before it answers must never be rolled back
STARTUP_S = 6  # the app's own start-up on a loaded 2-core machine (docs/deploy.md: measured 2-5 s)
ROLLBACK_BUDGET_S = 45  # Swarm's update start -> rollback completed, for a release whose /health answers 500
TASK_START_S = 4  # Swarm creating the new task and starting its container, then returning to the old one


def test_app_health_timing_rolls_a_bad_release_back_within_budget_and_waits_out_a_slow_start():
    """A replica has start_period + retries x interval to answer /health once: more than a 20 s warm-up plus the
    app's own start-up, less than the rollback budget minus what Swarm itself takes (the rollback's monitor
    window included: Swarm reports completion only after it)."""
    interval = default("APP_HEALTH_INTERVAL")
    grace = health.swarm_grace(default("APP_HEALTH_START_PERIOD"), interval, default("APP_HEALTH_RETRIES"))
    assert grace >= SLOW_START_S + STARTUP_S + interval
    assert grace + TASK_START_S + default("APP_ROLLBACK_MONITOR") <= ROLLBACK_BUDGET_S - 5
    refusal = health.swarm_timing_refusal(
        default("APP_HEALTH_START_PERIOD"), interval, default("APP_HEALTH_RETRIES"),
        default("APP_UPDATE_MONITOR"), default("DEPLOY_TIMEOUT"),
    )  # fmt: skip
    assert refusal is None


@pytest.mark.parametrize(
    ("timing", "names"),
    [
        ((24, 2, 3, 10, 300), None),
        ((24, 2, 3, 6, 300), "APP_UPDATE_MONITOR=6 must be above APP_HEALTH_INTERVAL x APP_HEALTH_RETRIES (6 s)"),
        ((24, 5, 4, 21, 300), None),
        ((120, 2, 3, 10, 136), "DEPLOY_TIMEOUT=136 must be above the health grace plus APP_UPDATE_MONITOR (136 s)"),
        ((120, 2, 3, 10, 137), None),
    ],
    ids=["defaults", "monitor-too-short", "wide", "timeout-too-short", "timeout-just-enough"],
)
def test_swarm_timing_refusal(timing, names):
    refusal = health.swarm_timing_refusal(*timing)
    if names is None:
        assert refusal is None
    else:
        assert refusal.startswith(names) and refusal.endswith("; raise it") and "\n" not in refusal


def test_compose_gives_a_start_at_least_as_long_as_the_stack():
    """compose rolls nothing back (`invoke up` only waits), so it may wait longer for a slow first start."""
    assert seconds(COMPOSE["prod"]["healthcheck"]["start_period"]) >= default("APP_HEALTH_START_PERIOD")


def test_app_health_check_interval_is_at_least_composes():
    """Swarm replaces an unhealthy replica (compose only reports it), so the stack may check less often: a
    slow check on a loaded host must not be taken for a dead replica. Never more often than compose."""
    assert default("APP_HEALTH_INTERVAL") >= seconds(COMPOSE["prod"]["healthcheck"]["interval"])


@pytest.mark.parametrize("key", ["read_only", "tmpfs", "cap_drop", "init", "stop_grace_period"])
def test_app_least_privilege_matches_compose(key):
    assert APP[key] == COMPOSE["prod"][key]


def test_db_matches_compose():
    compose_db = COMPOSE["db"]
    assert DB["image"] == compose_db["image"]
    for name in ("MYSQL_DATABASE", "MYSQL_USER"):
        assert DB["environment"][name] == compose_db["environment"][name]
    for key in ("interval", "timeout", "retries", "start_period"):
        assert DB["healthcheck"][key] == compose_db["healthcheck"][key], key
    assert "MYSQL_PASSWORD" not in DB["environment"] and "MYSQL_ROOT_PASSWORD" not in DB["environment"]


def test_the_proxy_is_compose_prods_with_the_same_configuration():
    proxy, compose_proxy = STACK["services"]["proxy"], COMPOSE["proxy"]
    assert proxy["image"] == compose_proxy["image"]
    assert STACK["configs"]["haproxy"]["file"] == "./proxy/haproxy.cfg"
    mounts = {target: source for source, target, _ in (volume.rsplit(":", 2) for volume in compose_proxy["volumes"])}
    assert mounts["/usr/local/etc/haproxy/haproxy.cfg"] == "./proxy/haproxy.cfg"
    page = "/usr/local/etc/haproxy/maintenance.html"  # the maintenance page, the same file in both (MAINTENANCE_PAGE)
    assert [c["target"] for c in proxy["configs"]] == ["/usr/local/etc/haproxy/haproxy.cfg", page]
    assert mounts[page] == "${MAINTENANCE_PAGE_FILE:-./proxy/maintenance.html}"
    assert {s["target"] for s in proxy["secrets"]} == {path for path in mounts if "/tls/" in path}
    for name in ("PROXY_BACKEND_PORT", "PROXY_MAX_BODY_BYTES"):
        assert proxy["environment"][name] == compose_proxy["environment"][name], name
    assert proxy["environment"]["PROXY_BACKEND_HOST"] == "app"
    container_port = COMPOSE["prod"]["ports"][0].rsplit(":", 1)[1]
    assert proxy["environment"]["PROXY_BACKEND_PORT"] == container_port
    (port,) = proxy["ports"]
    assert f"{port['target']}" == compose_proxy["ports"][0].rsplit(":", 1)[1]
    assert port["mode"] == "host" and port["published"] == "${HTTPS_PORT:-8443}"
    for key in ("read_only", "tmpfs", "cap_drop", "stop_grace_period"):
        assert proxy[key] == compose_proxy[key], key


def test_the_app_update_is_safe():
    policy = APP["deploy"]
    assert policy["endpoint_mode"] == "dnsrr"
    assert policy["update_config"]["order"] == "start-first"
    assert policy["update_config"]["failure_action"] == "rollback"
    assert policy["update_config"]["parallelism"] == 1
    assert default("APP_UPDATE_MONITOR") > default("APP_HEALTH_INTERVAL") * default("APP_HEALTH_RETRIES")


def test_the_proxy_is_running_for_swarm_only_once_it_accepts_connections():
    """`invoke deploy` waits for every task Swarm wants running: with this check, every node's proxy listening."""
    proxy = STACK["services"]["proxy"]
    target = proxy["ports"][0]["target"]
    assert proxy["healthcheck"]["test"] == ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{target}"]


@pytest.mark.parametrize(
    ("service", "owner"),
    [(APP, "10001"), (MIGRATE, "10001"), (DB, "999")],
    ids=["app: the image's USER", "migrate: the app's", "db: mysql in both db images"],
)
def test_secret_files_are_readable_by_the_services_own_user_only(service, owner):
    assert service["secrets"], "no secrets"
    for secret in service["secrets"]:
        assert (secret["uid"], secret["gid"], secret["mode"]) == (owner, owner, 0o400), secret["source"]


def test_the_owners_are_the_images_users():
    assert "USER 10001:10001" in (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    mariadb = (DOCKER / "offline" / "mariadb.Dockerfile").read_text(encoding="utf-8")
    assert "--uid 999 --gid 999" in mariadb and "USER mysql" in mariadb


def test_every_stack_file_declares_the_same_attachable_network():
    """Whichever file is deployed first creates `backend`: a scraper joins it (the app's /metrics: operating.md)."""
    networks = [load(name)["networks"]["backend"] for name in ("stack.yaml", "stack.db.yaml", "stack.migrate.yaml")]
    assert networks == [{"driver": "overlay", "attachable": True}] * 3
