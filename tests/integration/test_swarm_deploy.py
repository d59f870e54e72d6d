"""`invoke deploy` on a real Docker Swarm: one swarm, registry and stack for the whole module (tests run in order).

The engine is left in the swarm state it was found in: when the module puts it in swarm mode, it leaves swarm
mode at the end, also on failure. Everything else the module makes (a copy of the checkout, the local
registry, the stack, its secrets, config and volume, the images) is removed at the end. Load is bounded in
time and count and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.facts import parse_docker_time
from lifecycle import deploylock
from lifecycle.backup import LABEL_ZIP
from lifecycle.commands import swarm
from lifecycle.release import RELEASES_FILE, Release, ReleaseLog
from tests.helpers import jobs
from tests.helpers.checkout import IsolatedCheckout, copy_checkout
from tests.helpers.engine import (
    docker,
    free_port,
    gwbridge_exists,
    random_secret,
    remove_gwbridge,
    unique_name,
    wait_for,
)
from tests.helpers.tools import BUILD_TIMEOUT, assert_one_line, last_line, start_tool, strip_ansi

# Leaving swarm mode restarts every container on a user-defined network: nox -s e2e runs these alone (conftest).
pytestmark = [pytest.mark.integration, pytest.mark.swarm]

DEPLOY_TIMEOUT = 600  # seconds for one `invoke deploy` (its own deadline per step is DEPLOY_TIMEOUT=300)
LOAD_SECONDS = 20  # at least this long under load
LOAD_CONNECTIONS = 4
LOAD_MAX_REQUESTS = 50_000  # per run: the load is bounded in count as well as time
NOTE_TEXT = "written before the swarm redeploys"
NOTE_ROWS = "SELECT id, text FROM notes_note ORDER BY id"
MIGRATION_0002 = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = [migrations.RunSQL("SELECT 1", migrations.RunSQL.noop)]
"""
MIGRATION_0003_FAILS = """from django.db import migrations


def refuse(apps, schema_editor):
    raise RuntimeError("migration 0003 refused on purpose by the swarm test")


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_swarm_check")]
    operations = [migrations.RunPython(refuse, migrations.RunPython.noop)]
"""
# A code change the replicas serve (views.py) plus a new migration; and a release whose /health answers 500.
CHANGE_CODE = (
    "RUN echo '# swarm test: changed code' >> /app/django_site/views.py\n"
    "COPY 0002_swarm_check.py /app/django_site/notes/migrations/\n"
)
BREAK_HEALTH = (
    'RUN sed -i \'s/return JsonResponse({"status": "ok", "database": "reachable"})/'
    'return JsonResponse({"status": "broken"}, status=500)/\' /app/django_site/views.py'
    " && grep -q broken /app/django_site/views.py\n"
)
FAIL_MIGRATION = "COPY 0003_fails.py /app/django_site/notes/migrations/\n"
# A release that warms up for 20 s before it serves (test-only: the entrypoint wrapped in a sleep).
WARM_UP_S = 20
SLOW_START = (
    f'ENTRYPOINT ["/bin/sh", "-c", "sleep {WARM_UP_S} && exec /usr/local/bin/entrypoint.sh \\"$@\\"", "slow-start"]\n'
    'CMD ["gunicorn", "--config", "/etc/gunicorn.conf.py", "django_site.wsgi:application"]\n'
)
ROLLBACK_BUDGET_S = 45  # Swarm's update start -> rollback completed, for a release whose /health answers 500
STARTUP_BUDGET_S = 12  # task's container started -> first healthy /health (the stack allows 30 s in all)
# A job declared in the checkout's pyproject.toml before the first deploy, so the stack has its scheduler from the
# start (no deploy of its own): a row per run (tests/helpers/jobs.py), every JOB_EVERY seconds, missed slots run late.
JOB, JOB_EVERY = "rows", 30


@dataclass
class Swarm:
    """The module's checkout copy, its settings and what it released."""

    checkout: IsolatedCheckout
    https_port: int
    registry_port: int
    releases: dict[str, str] = field(default_factory=dict)  # name -> name@sha256 digest
    outputs: list[str] = field(default_factory=list)  # every command's output, to look for secrets
    refusals: dict[str, str] = field(default_factory=dict)  # bad input -> the output of the refused deploy
    services_after_refusals: list[str] = field(default_factory=list)
    secrets_after_refusals: list[str] = field(default_factory=list)
    first_deploy: subprocess.CompletedProcess[str] | None = None
    backup_without_stack: subprocess.CompletedProcess[str] | None = None

    @property
    def stack(self) -> str:
        return self.checkout.project

    @property
    def root(self) -> Path:
        return self.checkout.root

    @property
    def ports(self) -> dict[str, str]:
        return {"HTTPS_PORT": str(self.https_port), "REGISTRY_PORT": str(self.registry_port)}

    def invoke(self, *args: str, env: dict[str, str] | None = None, timeout: float = DEPLOY_TIMEOUT):
        """`invoke ARGS` in the checkout copy with its settings (env overrides them), output combined."""
        # The test pushes releases by hand (derive) that nobody signs: deployed under the transition setting
        # (signatures and provenance are tests/integration/test_release_trust.py's).
        unsigned = {"ALLOW_UNSIGNED": "true"}
        done = self.checkout.invoke_combined(*args, env={**self.ports, **unsigned, **(env or {})}, timeout=timeout)
        self.outputs.append(done.stdout)
        return done

    def deploy(self, *args: str, env: dict[str, str] | None = None):
        return self.invoke("deploy", "--stage", "prod", *args, env=env)

    @property
    def log(self) -> ReleaseLog:
        return ReleaseLog(self.root / RELEASES_FILE)

    def record(self, name: str, image: str) -> None:
        """A release as `invoke release` records it (the newest is deployed), for an image pushed by the test."""
        self.releases[name] = image
        self.log.append(Release(image, "prod", name, "0" * 64, "unknown", True, "2026-01-01T00:00:00Z", "test"))

    def push(self, name: str, tag: str) -> str:
        """Push a local image to the module's registry; record it as a release; return name@sha256."""
        remote = f"127.0.0.1:{self.registry_port}/{self.checkout.proj_name}:{name}"
        docker("tag", tag, remote)
        docker("push", remote)
        digest = docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", remote).stdout.strip()
        self.record(name, digest)
        return digest

    def derive(self, name: str, base: str, steps: str, files: dict[str, str]) -> str:
        """A release FROM base with Dockerfile steps run as root, the code recompiled; pushed and recorded."""
        context = self.root / ".lifecycle" / f"derive-{name}"
        context.mkdir(parents=True)
        for file_name, text in files.items():
            (context / file_name).write_text(text, encoding="utf-8")
        (context / "Dockerfile").write_text(
            f"FROM {base}\nUSER root\n{steps}"
            "RUN python3 -m compileall -q --invalidation-mode unchecked-hash /app/django_site\n"
            "USER 10001:10001\n",
            encoding="utf-8",
        )
        tag = f"{self.checkout.proj_name}:{name}"
        docker("build", "--quiet", "--tag", tag, str(context))
        return self.push(name, tag)

    def app_tasks(self) -> list[tuple[str, str]]:
        """(image, state) of every app task Swarm wants running."""
        done = docker("service", "ps", "--no-trunc", "--filter", "desired-state=running", "--format",
                      "{{.Image}}\t{{.CurrentState}}", f"{self.stack}_app", check=False)  # fmt: skip
        return [tuple(line.split("\t")) for line in done.stdout.splitlines() if line.strip()]

    def app_logs(self) -> str:
        """What every app container on this node wrote (`docker service logs` can hang on Engine 20.10)."""
        label = f"label=com.docker.swarm.service.name={self.stack}_app"
        containers = docker("ps", "--all", "--quiet", "--filter", label).stdout.split()
        outputs = [docker("logs", container, check=False) for container in containers]
        return "".join(done.stdout + done.stderr for done in outputs)

    def app_images(self) -> set[str]:
        return {image for image, _ in self.app_tasks()}

    def startup_seconds(self) -> list[float]:
        """For each running app replica: its container's start -> Swarm marking the task running, which it does
        at the first passing health check (the app's real start-up, to the check interval)."""
        tasks = docker("service", "ps", "--quiet", "--no-trunc", "--filter", "desired-state=running",
                       f"{self.stack}_app").stdout.split()  # fmt: skip
        found = docker("inspect", "--format", "{{.Status.State}} {{json .Status.Timestamp}} "
                       "{{.Status.ContainerStatus.ContainerID}}", *tasks).stdout.splitlines()  # fmt: skip
        out = []
        for state, running_since, container in (line.split() for line in found):
            if state != "running":
                continue
            started = docker("inspect", "--format", "{{.State.StartedAt}}", container).stdout.strip()
            out.append(round(parse_docker_time(running_since.strip('"')) - parse_docker_time(started), 1))
        return out

    def update_seconds(self) -> tuple[str, float | None]:
        """The app service's last update: (state, seconds from its start to its completion)."""
        status = json.loads(docker("service", "inspect", "--format", "{{json .UpdateStatus}}",
                                   f"{self.stack}_app").stdout or "null") or {}  # fmt: skip
        started, completed = (
            parse_docker_time(status.get("StartedAt", "")),
            parse_docker_time(status.get("CompletedAt", "")),
        )
        return status.get("State", ""), round(completed - started, 1) if started and completed else None

    def manage(self, *command: str) -> None:
        """`python manage.py COMMAND` in an app task on this node (the running release)."""
        label = f"label=com.docker.swarm.service.name={self.stack}_app"
        container = docker("ps", "--quiet", "--filter", label).stdout.split()[0]
        docker("exec", container, "python", "manage.py", *command)

    def sql(self, query: str) -> str:
        service = f"label=com.docker.swarm.service.name={self.stack}_db"
        (container,) = docker("ps", "--quiet", "--filter", service).stdout.split()
        done = docker("exec", container, "sh", "-c",
                      f'MYSQL_PWD="$(cat /run/secrets/db_password)" mysql -N -uapp app -e "{query}"')  # fmt: skip
        return done.stdout.strip()


def https(
    port: int, path: str, method: str = "GET", body: dict | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, str]:
    """One request through the proxy (the certificate is checked only with a context that trusts its CA)."""
    context = context or ssl._create_unverified_context()
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


class Load:
    """Bounded load on /health through the proxy while a deploy runs: LOAD_CONNECTIONS threads, at least
    LOAD_SECONDS and until stopped, at most LOAD_MAX_REQUESTS requests and 600 s."""

    def __init__(self, port: int):
        self.port, self.ok, self.failures = port, 0, []
        self.started = time.monotonic()
        self.stop_after = self.started + 600
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.work, daemon=True) for _ in range(LOAD_CONNECTIONS)]
        for thread in self.threads:
            thread.start()

    def work(self) -> None:
        while time.monotonic() < self.stop_after and self.ok + len(self.failures) < LOAD_MAX_REQUESTS:
            try:
                status, body = https(self.port, "/health")
                outcome = None if status == 200 else f"HTTP {status} {body[:60]!r}"
            except OSError as error:
                outcome = repr(error)
            with self.lock:
                if outcome:  # when, so a failure can be laid beside the deploy's output
                    self.failures.append(f"{outcome} at {time.monotonic() - self.started:.1f} s")
                else:
                    self.ok += 1

    def finish(self) -> tuple[int, list[str]]:
        self.stop_after = max(time.monotonic(), self.started + LOAD_SECONDS)
        for thread in self.threads:
            thread.join(timeout=60)
        return self.ok, self.failures


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def remove_stack_leftovers(stack: str) -> None:
    """What deploy.rm keeps on purpose (volume, secrets) and the content-named configs: the test made them."""
    docker("stack", "rm", stack, check=False)
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and docker(
            "network", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack}", check=False
        ).stdout.strip()
    ):
        time.sleep(1)
    for kind in ("secret", "config"):
        names = docker(kind, "ls", "--quiet", "--filter", f"name={stack}_", check=False).stdout.split()
        if names:
            docker(kind, "rm", *names, check=False)
    deadline = time.monotonic() + 60  # the volume is free once the db container is gone
    while docker("volume", "rm", f"{stack}_db-data", check=False).returncode and time.monotonic() < deadline:
        if docker("volume", "inspect", f"{stack}_db-data", check=False).returncode:
            break
        time.sleep(1)


@pytest.fixture(scope="module")
def site(engine, tmp_path_factory) -> Iterator[Swarm]:
    """A copy of the checkout with its own names and ports, its local registry, the prod image built and
    released; the engine in swarm mode; the bad input that must change nothing tried before the first deploy."""
    root = copy_checkout(tmp_path_factory.mktemp("swarm") / "checkout")
    with (root / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(jobs.declaration(JOB, JOB_EVERY, "once"))
    checkout = IsolatedCheckout(unique_name("it"), free_port(), random_secret(24), random_secret(24), root=root)
    s = Swarm(checkout, https_port=free_port(), registry_port=free_port())
    (root / RELEASES_FILE).unlink(missing_ok=True)
    found, had_gwbridge = swarm_state(), gwbridge_exists()
    try:
        if found != "active":
            s.refusals["not in swarm mode"] = s.deploy().stdout
        assert s.invoke("swarm.init").returncode == 0, s.outputs[-1][-3000:]
        done = s.invoke("registry.up")
        assert done.returncode == 0, done.stdout[-3000:]
        s.refusals["no release"] = s.deploy().stdout
        s.backup_without_stack = s.invoke("db.backup", "--swarm")
        s.refusals["unknown stage"] = s.invoke("deploy", "--stage", "qa").stdout
        s.refusals["stage"] = s.invoke("deploy", "--stage", "stage").stdout
        done = s.invoke("release", "--stage", "prod", "--allow-dirty", timeout=BUILD_TIMEOUT)
        assert done.returncode == 0, done.stdout[-3000:]
        s.releases["v1"] = s.log.latest("prod").reference
        s.refusals["replicas 0"] = s.deploy("--replicas", "0").stdout
        s.refusals["replicas two"] = s.deploy("--replicas", "two").stdout
        lost = f"127.0.0.1:{s.registry_port}/{s.checkout.proj_name}@sha256:{'0' * 64}"
        s.record("lost", lost)
        s.refusals["lost digest"] = s.deploy().stdout
        s.record("v1", s.releases["v1"])
        s.services_after_refusals = docker("service", "ls", "--quiet", "--filter", f"name={s.stack}_").stdout.split()
        s.secrets_after_refusals = docker("secret", "ls", "--quiet", "--filter", f"name={s.stack}_").stdout.split()
        s.first_deploy = s.deploy("--replicas", "3")
        yield s
    finally:
        remove_stack_leftovers(s.stack)
        s.invoke("registry.down", "--volumes", "--yes", timeout=300)
        ours = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        names = (f"{s.checkout.proj_name}:", f"127.0.0.1:{s.registry_port}/{s.checkout.proj_name}:")
        made = [image for image in ours if image.startswith(names)]
        if made:
            docker("image", "rm", "--force", *made, check=False)
        if found != "active":
            docker("swarm", "leave", "--force", check=False)
            if not had_gwbridge:
                remove_gwbridge()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(s.checkout.backups, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("no release", ["no release of prod yet", "invoke release"]),
        ("unknown stage", ["unknown stage 'qa'", "prod"]),
        ("stage", ["only prod deploys", "--stage prod"]),
        ("replicas 0", ["--replicas '0'", "at least 1"]),
        ("replicas two", ["--replicas 'two'", "at least 1"]),
        ("lost digest", ["the registry no longer has", "sha256:000000000000", "nothing changed"]),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(site, case, words):
    output = site.refusals[case]
    assert_one_line(output, *words)
    assert site.services_after_refusals == [] and site.secrets_after_refusals == []


def test_a_swarm_backup_without_a_deployed_stack_is_one_line_and_writes_nothing(site):
    done = site.backup_without_stack
    assert done.returncode != 0
    assert_one_line(done.stdout, f"no task of {site.stack}_db runs", "invoke deploy --stage prod", "nothing was done")
    assert not list(site.checkout.backups.glob("*.sql.gz*"))


def test_outside_swarm_mode_deploy_says_how_to_fix_it(site):
    if "not in swarm mode" not in site.refusals:
        pytest.skip("the engine was already in swarm mode; tests/unit covers the decision")
    assert_one_line(site.refusals["not in swarm mode"], "not in swarm mode", "invoke swarm.init")


# ------------------------------------------------------------------------------------------------ the site
def test_three_replicas_answer_over_https(site):
    done = site.first_deploy
    assert done.returncode == 0, done.stdout[-4000:]
    assert last_line(done.stdout).endswith(f"https://127.0.0.1:{site.https_port}/")
    assert "a new replica has 30 s to answer /health once" in done.stdout  # the APP_HEALTH_* defaults
    assert site.app_images() == {site.releases["v1"]} and len(site.app_tasks()) == 3
    trusting_the_ca = ssl.create_default_context(cafile=site.root / ".lifecycle" / "tls" / "ca.crt")
    assert https(site.https_port, "/", context=trusting_the_ca)[0] == 200
    status, body = https(site.https_port, "/health")
    assert status == 200 and json.loads(body)["database"] == "reachable"
    status, body = https(site.https_port, "/api/notes", "POST", {"text": NOTE_TEXT})
    assert status == 201, body
    status, body = https(site.https_port, "/api/notes")
    assert status == 200 and NOTE_TEXT in [note["text"] for note in json.loads(body)["notes"]]


# A scraper on the stack's network, as Prometheus would run there: every replica by DNS, each one's /metrics summed.
SCRAPE_EVERY_REPLICA = """
import socket, sys, urllib.request
replicas = sorted({info[4][0] for info in socket.getaddrinfo("app", 8000, proto=socket.IPPROTO_TCP)})
total = 0.0
for address in replicas:
    with urllib.request.urlopen(f"http://{address}:8000/metrics", timeout=10) as page:
        lines = page.read().decode().splitlines()
    total += sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(sys.argv[1] + " "))
print(len(replicas), total)
"""
NOTES_GETS = 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="notes:api"}'


def test_metrics_answer_every_replica_inside_the_stacks_network_and_never_over_https(site):
    def scrape() -> tuple[int, float]:
        done = docker("run", "--rm", "--network", f"{site.stack}_backend", "--entrypoint", "python3",
                      site.releases["v1"], "-c", SCRAPE_EVERY_REPLICA, NOTES_GETS)  # fmt: skip
        replicas, total = done.stdout.split()
        return int(replicas), float(total)

    for path in ("/metrics", "/metrics/", "/%6Detrics"):
        assert https(site.https_port, path)[0] == 404, path
    replicas, before = scrape()
    for _ in range(9):
        assert https(site.https_port, "/api/notes")[0] == 200
    assert scrape() == (replicas, before + 9) and replicas == 3  # every replica's and every worker's counts


def test_replicas_start_well_inside_their_health_check_grace(site):
    """The stack's health timing (docker/stack.yaml) is sized on this: measured, not assumed."""
    started = site.startup_seconds()
    print(f"app start-up, container start -> healthy: {sorted(started)} s")
    assert len(started) == 3 and max(started) <= STARTUP_BUDGET_S, started


def test_status_shows_the_digest_of_every_task(site):
    done = site.invoke("deploy.status")
    assert done.returncode == 0, done.stdout[-3000:]
    assert done.stdout.count(site.releases["v1"]) >= 3  # three tasks, and the app's line


def test_no_secret_in_inspect_task_inspect_or_output(site):
    values = [site.checkout.db_password, site.checkout.db_root_password, dotenv(site.root)["DJANGO_SECRET_KEY"]]
    services = docker("service", "ls", "--quiet", "--filter", f"name={site.stack}_").stdout.split()
    containers = docker("ps", "--quiet", "--filter", f"label=com.docker.stack.namespace={site.stack}").stdout.split()
    seen = [
        docker("service", "inspect", *services).stdout,
        docker("inspect", *containers).stdout,
        *site.outputs,
    ]
    for value in values:
        assert not any(value in text for text in seen)


def test_secret_files_are_the_services_own_and_their_names_confirm_no_guess(site):
    """Each task reads its secrets as its own user, mode 0400 (Swarm's default is root, 0444); a secret's name is
    keyed with the checkout's salt, so the plain hash of a guessed password names no secret."""
    stat_format = ["stat", "-L", "-c", "%n %u:%g %a"]
    for service, files, owner in [
        ("app", ["django_secret_key", "db_password"], "10001:10001"),
        ("db", ["db_password", "db_root_password"], "999:999"),
    ]:
        label = f"label=com.docker.swarm.service.name={site.stack}_{service}"
        container = docker("ps", "--quiet", "--filter", label).stdout.split()[0]
        shown = docker("exec", container, *stat_format, *(f"/run/secrets/{name}" for name in files)).stdout
        assert shown.split("\n")[:-1] == [f"/run/secrets/{name} {owner} 400" for name in files]
        whoami = docker("exec", container, "id", "-u").stdout.strip()
        readable = docker("exec", container, "cat", f"/run/secrets/{files[0]}", check=False)
        assert readable.returncode == 0 and readable.stdout, f"{service} (uid {whoami}) cannot read its secret"
    names = set(docker("secret", "ls", "--format", "{{.Name}}", "--filter", f"name={site.stack}_").stdout.split())
    password = swarm.content_name(site.stack, "DB_PASSWORD", site.checkout.db_password)  # the unsalted guess
    assert any(name.startswith(f"{site.stack}_db_password_") for name in names) and password not in names
    salt = site.root / swarm.SALT_FILE
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600


def dotenv(root: Path) -> dict[str, str]:
    from lifecycle.settings import read_env_file

    return read_env_file(root, Path(".env"))


# ---------------------------------------------------------------------------------------- rolling updates
def deploy_under_load(site, *args: str, env: dict[str, str] | None = None):
    load = Load(site.https_port)
    done = site.deploy(*args, env=env)
    ok, failures = load.finish()
    return done, ok, failures


def test_code_change_rolls_out_under_load_with_zero_failures_and_migrates_once(site):
    v2 = site.derive("v2", site.releases["v1"], CHANGE_CODE, {"0002_swarm_check.py": MIGRATION_0002})
    done, ok, failures = deploy_under_load(site, "--replicas", "3")
    assert done.returncode == 0, done.stdout[-4000:]
    assert failures == [] and ok > 0
    assert site.app_images() == {v2} and len(site.app_tasks()) == 3
    assert site.sql("SELECT COUNT(*) FROM django_migrations WHERE name = '0002_swarm_check'") == "1"
    assert done.stdout.count(f"Creating service {site.stack}_migrate") == 1
    logs = site.app_logs()
    assert "Applying notes.0002" not in logs and "skipping migrations" in logs


def test_rollback_returns_to_the_previous_digest(site):
    done = site.invoke("deploy.rollback")
    assert done.returncode == 0, done.stdout[-4000:]
    assert site.app_images() == {site.releases["v1"]}
    assert https(site.https_port, "/health")[0] == 200


def test_a_release_failing_its_health_check_is_rolled_back_by_swarm(site):
    current = site.app_images()
    bad = site.derive("bad", site.releases["v1"], BREAK_HEALTH, {})
    done, ok, failures = deploy_under_load(site, "--replicas", "3")
    assert done.returncode != 0
    assert_one_line(done.stdout, bad.split("@")[1][:19], "rolled")
    assert failures == [] and ok > 0, (ok, len(failures), failures[:3], failures[-3:], done.stdout[-3000:])
    assert site.app_images() == current
    state, seconds = site.update_seconds()
    print(f"bad release: update start -> {state}: {seconds} s")
    assert state == "rollback_completed" and seconds is not None and seconds <= ROLLBACK_BUDGET_S, (state, seconds)


def test_a_failing_migration_stops_the_deploy_and_the_app_keeps_answering(site):
    current = site.app_images()
    site.derive("fails", site.releases["v2"], FAIL_MIGRATION, {"0003_fails.py": MIGRATION_0003_FAILS})
    done = site.deploy("--replicas", "3")
    assert done.returncode != 0
    assert "migration 0003 refused on purpose" in done.stdout  # the job's last log lines
    assert_one_line(done.stdout, "migrate job", "the app runs as before")
    assert f"--compose-file {site.root}/docker/stack.yaml" not in done.stdout  # the app was never updated
    assert site.app_images() == current and https(site.https_port, "/health")[0] == 200
    assert site.sql("SELECT COUNT(*) FROM django_migrations WHERE name = '0003_fails'") == "0"


def test_a_failing_release_command_stops_the_deploy_after_migrate_and_the_app_keeps_answering(site):
    """The migrate job runs RELEASE_COMMANDS after migrate (the entrypoint's `release`), as compose does at start."""
    site.record("v2", site.releases["v2"])  # the newest release migrates cleanly, whatever an earlier test recorded
    current = site.app_images()
    done = site.deploy("--replicas", "3", env={"RELEASE_COMMANDS": "check;nosuchcommand"})
    assert done.returncode != 0
    assert "release command: manage.py nosuchcommand" in done.stdout  # the job's last log lines
    assert "Unknown command: 'nosuchcommand'" in done.stdout
    assert_one_line(done.stdout, "migrate job", "the app runs as before")
    assert site.app_images() == current and https(site.https_port, "/health")[0] == 200


def test_scale_1_4_2(site):
    site.record("v2", site.releases["v2"])  # released again: the failed releases are not the last any more
    for replicas in (1, 4, 2):
        done = site.deploy("--replicas", str(replicas))
        assert done.returncode == 0, done.stdout[-4000:]
        assert len(site.app_tasks()) == replicas and site.app_images() == {site.releases["v2"]}


def test_an_unchanged_redeploy_restarts_nothing(site):
    def running_task_ids() -> set[str]:
        return set(docker("service", "ps", "--quiet", "--filter", "desired-state=running", f"{site.stack}_app",
                          f"{site.stack}_db", f"{site.stack}_proxy").stdout.split())  # fmt: skip

    before = running_task_ids()
    done = site.deploy("--replicas", "2")
    assert done.returncode == 0, done.stdout[-4000:]
    assert running_task_ids() == before


# ------------------------------------------------------------------------------------- one deploy at a time
def start_deploy(site, *args: str) -> subprocess.Popen[str]:
    """`invoke deploy` started and not waited for, in a session of its own (so the test can kill its group)."""
    env = {**site.checkout.env, **site.ports, "ALLOW_UNSIGNED": "true"}
    return start_tool("invoke", "deploy", "--stage", "prod", *args, env=env, cwd=site.root)


def lock_exists(site) -> bool:
    return docker("config", "inspect", swarm.deploy_lock_name(site.stack), check=False).returncode == 0


def test_two_deploys_at_once_one_refuses_naming_the_holder_and_only_one_migrates(site):
    started = [start_deploy(site, "--replicas", "2", "--wait", "0") for _ in range(2)]
    outputs = [strip_ansi(process.communicate(timeout=DEPLOY_TIMEOUT)[0]) for process in started]
    site.outputs.extend(outputs)
    codes = [process.returncode for process in started]
    assert sorted(codes)[0] == 0 and sorted(codes)[1] != 0, [output[-2000:] for output in outputs]
    refused = outputs[codes.index(sorted(codes)[1])]
    assert_one_line(refused, "another deploy holds the lock:", "since 20", f"/{site.checkout.proj_name}@sha256:")
    assert f"Creating service {site.stack}_migrate" not in refused and "stack deploy" not in refused
    assert sum(output.count(f"Creating service {site.stack}_migrate") for output in outputs) == 1
    assert not lock_exists(site)
    last = deploylock.read_log(site.root)[-1]
    assert (last.action, last.outcome) == ("deploy", "ok") and f"{site.checkout.proj_name}@sha256:" in last.what


def test_a_killed_deploy_leaves_a_stale_lock_that_unlock_releases(site):
    process = start_deploy(site, "--replicas", "2")
    try:
        wait_for(lambda: lock_exists(site) or None, timeout=120, what="the deploy lock", interval=0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # no clean-up runs: the lock stays
        process.communicate(timeout=30)
    assert lock_exists(site)
    done = site.deploy("--replicas", "2", "--wait", "600")  # stale: refused at once, never waited for
    assert done.returncode != 0
    assert_one_line(done.stdout, "left over by", f"(pid {process.pid} on this host) is gone", "invoke deploy.unlock")
    done = site.invoke("deploy.unlock")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "released the deploy lock held by" in done.stdout and not lock_exists(site)
    done = site.deploy("--replicas", "2")  # and a deploy works again; the killed one's migrate job is cleaned up
    assert done.returncode == 0, done.stdout[-4000:]
    assert https(site.https_port, "/health")[0] == 200


def test_status_shows_the_stack_on_the_last_release(site):
    done = site.invoke("status", "--json")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    lines = {line["name"]: line for line in report["lines"]}
    assert lines["swarm app"]["ok"], lines
    replicas = len(site.app_tasks())
    assert lines["swarm app"]["text"].startswith(f"{replicas}/{replicas} running, ") and "deploy lock" not in lines
    assert lines["migrations"]["text"] == "none pending (swarm app)", report


def test_maintenance_on_the_stack_answers_503_but_health_and_restarts_no_task(site):
    def running_task_ids() -> set[str]:
        return set(docker("service", "ps", "--quiet", "--filter", "desired-state=running", f"{site.stack}_app",
                          f"{site.stack}_proxy").stdout.split())  # fmt: skip

    before = running_task_ids()
    load = Load(site.https_port)  # /health under load throughout: never a failure
    try:
        done = site.invoke("maintenance.on", "--target", "swarm")
        assert done.returncode == 0 and "maintenance on on the swarm proxy" in done.stdout, done.stdout[-2000:]
        status, page = https(site.https_port, "/api/notes")
        assert status == 503 and "Down for maintenance" in page
        assert https(site.https_port, "/health")[0] == 200
        done = site.invoke("maintenance.off", "--target", "swarm")
        assert done.returncode == 0, done.stdout[-2000:]
        assert https(site.https_port, "/api/notes")[0] == 200
    finally:
        site.invoke("maintenance.off", "--target", "swarm")
        ok, failures = load.finish()
    assert failures == [] and ok > 0
    assert running_task_ids() == before


def test_a_changed_secret_key_rotates_on_the_next_deploy(site):
    before = docker("service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}",
                    f"{site.stack}_app").stdout  # fmt: skip
    done = site.deploy("--replicas", "2", env={"DJANGO_SECRET_KEY": random_secret(50)})
    assert done.returncode == 0, done.stdout[-4000:]
    after = docker("service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}",
                   f"{site.stack}_app").stdout  # fmt: skip
    old = {s["SecretName"] for s in json.loads(before) if s["File"]["Name"] == "django_secret_key"}
    new = {s["SecretName"] for s in json.loads(after) if s["File"]["Name"] == "django_secret_key"}
    assert old != new and len(new) == 1
    assert https(site.https_port, "/health")[0] == 200


def test_the_stacks_database_backs_up_and_restores_exactly_the_backed_up_rows(site):
    """db.backup --swarm in the db task on this node (taken while sessions.0001_initial is unapplied), rows changed
    and dropped, db.restore --swarm FILE --yes: the backed-up rows exactly, the migration the backup lacks applied
    with the running release (in an app task on this node), the site healthy."""
    assert https(site.https_port, "/api/notes", "POST", {"text": "kept by the stack's backup"})[0] == 201
    backed_up = site.sql(NOTE_ROWS)
    site.manage("migrate", "sessions", "zero")  # the backup lacks a migration the running release has
    try:
        done = site.invoke("db.backup", "--swarm")
    finally:
        site.manage("migrate", "sessions")
    assert done.returncode == 0, done.stdout[-3000:]
    (path,) = re.findall(r"^backup: (\S+\.sql\.gz) \(", strip_ansi(done.stdout), flags=re.MULTILINE)
    manifest = json.loads(Path(path.removesuffix(".sql.gz") + ".json").read_text(encoding="utf-8"))
    images = [docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                     f"{site.stack}_{service}").stdout.strip() for service in ("db", "app")]  # fmt: skip
    zip_sha = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL_ZIP}"}}}}', images[1])
    assert (manifest["server_image"], manifest["code_zip_sha256"]) == (images[0], zip_sha.stdout.strip())
    assert "sessions" not in manifest["migrations"]
    wait_for(lambda: https(site.https_port, "/health")[0] == 200, 30, "/health 200 with sessions migrated again")
    assert https(site.https_port, "/api/notes", "POST", {"text": "written after the backup"})[0] == 201
    site.sql("DELETE FROM notes_note WHERE text = 'kept by the stack''s backup'")
    assert site.sql(NOTE_ROWS) != backed_up
    done = site.invoke("db.restore", "--swarm", path, "--yes")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"the backup lacks with the running {site.stack}_app task" in done.stdout, done.stdout[-3000:]
    assert "sessions.0001_initial" in done.stdout and "the schema has every migration" in done.stdout
    assert site.sql(NOTE_ROWS) == backed_up
    wait_for(lambda: https(site.https_port, "/health")[0] == 200, 30, "/health 200 after the restore")


def test_the_stacks_database_restores_to_a_point_in_time(site):
    """db.backup --swarm, a note, the next whole second, another note, db.restore --swarm --to THAT SECOND --yes: the
    first note and not the second (the binlogs copied, decoded and replayed through the db task on this node)."""
    done = site.invoke("db.backup", "--swarm")
    assert done.returncode == 0 and "binlogs: copied" in done.stdout, done.stdout[-3000:]
    assert https(site.https_port, "/api/notes", "POST", {"text": "before the point in time"})[0] == 201
    time.sleep(1.1)  # the time below is after that note's second
    when, expected = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}", site.sql(NOTE_ROWS)
    time.sleep(1.1)
    assert https(site.https_port, "/api/notes", "POST", {"text": "after the point in time"})[0] == 201
    done = site.invoke("db.restore", "--swarm", "--to", when, "--yes")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"to {when}" in done.stdout and "transaction(s) replayed" in done.stdout, done.stdout[-3000:]
    assert site.sql(NOTE_ROWS) == expected and "before the point in time" in expected
    wait_for(lambda: https(site.https_port, "/health")[0] == 200, 30, "/health 200 after the restore")


def test_the_stacks_database_drills_with_the_release_it_runs(site):
    """db.drill --swarm: the newest backup of the stack's database restored into a throwaway server, its counts
    checked, migrate --check in the release the app service runs; the throwaway server removed."""
    done = site.invoke("db.backup", "--swarm")
    assert done.returncode == 0, done.stdout[-3000:]
    done = site.invoke("db.drill", "--swarm")
    assert done.returncode == 0, done.stdout[-3000:]
    image = docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f"{site.stack}_app")
    assert "drill PASSED" in done.stdout and f"migrate --check with {image.stdout.strip()}: no migration missing" in (
        done.stdout
    ), done.stdout[-3000:]
    label = f"label=com.docker.compose.project={site.stack}-drill"
    assert docker("ps", "--all", "--quiet", "--filter", label).stdout.split() == []


def test_rm_then_deploy_keeps_every_row(site):
    done = site.invoke("deploy.rm", "--yes")
    assert done.returncode == 0, done.stdout[-3000:]
    assert docker("service", "ls", "--quiet", "--filter", f"name={site.stack}_").stdout.split() == []
    assert docker("volume", "inspect", f"{site.stack}_db-data", check=False).returncode == 0
    done = site.deploy("--replicas", "2")
    assert done.returncode == 0, done.stdout[-4000:]
    status, body = https(site.https_port, "/api/notes")
    assert status == 200 and NOTE_TEXT in [note["text"] for note in json.loads(body)["notes"]]


def test_a_slow_but_healthy_start_is_never_rolled_back(site):
    """A release that serves only after 20 s of warm-up: the update waits for it and completes (one replica, so
    the module's clock pays for one slow start)."""
    slow = site.derive("slow", site.releases["v1"], SLOW_START, {})
    done, ok, failures = deploy_under_load(site, "--replicas", "1")
    assert done.returncode == 0, done.stdout[-4000:]
    assert failures == [] and ok > 0
    assert site.app_images() == {slow}
    state, seconds = site.update_seconds()
    (started,) = site.startup_seconds()
    print(f"slow release: container start -> healthy {started} s; update {state} in {seconds} s")
    assert state == "completed" and started >= WARM_UP_S, (state, started)


# ------------------------------------------------------------------------------------------- scheduled jobs
def wait_for_the_scheduler(site) -> None:
    """Until the stack's scheduler task runs on this node and has made its table of runs."""
    label = f"label=com.docker.swarm.service.name={site.stack}_scheduler"
    runs_table = "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'lifecycle_job_runs'"
    wait_for(lambda: docker("container", "ls", "--quiet", "--filter", label).stdout.strip() and site.sql(runs_table)
             == "1", timeout=120, what="the stack's scheduler task on this node and its table")  # fmt: skip


def job_line(listed: subprocess.CompletedProcess[str]) -> str:
    assert listed.returncode == 0, listed.stdout[-3000:]
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(f"{JOB}  ")]
    return line


def test_jobs_list_and_run_reach_the_stacks_scheduler_and_its_rows(site):
    """`jobs.list --swarm`: the job, its schedule and next slot; `jobs.run --swarm`: one run now through the
    scheduler's claim (a row, manual), which the job's own row and the next listing's last run show."""
    wait_for_the_scheduler(site)
    line = job_line(site.invoke("jobs.list", "--swarm"))
    assert line.startswith(f"{JOB}  */{JOB_EVERY} * * * * *  manage.py shell ") and "missed: once" in line, line
    next_slot = dt.datetime.strptime(line.split("  next: ")[1][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    assert next_slot.second % JOB_EVERY == 0, line
    assert next_slot - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=JOB_EVERY), line
    runs = f"FROM lifecycle_job_runs WHERE job = '{JOB}'"
    manual_ok = f"SELECT COUNT(*) {runs} AND manual = 1 AND status = 'ok'"
    before = int(site.sql(manual_ok))
    ran = site.invoke("jobs.run", JOB, "--swarm")
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert int(site.sql(manual_ok)) == before + 1
    assert site.sql(f"SELECT COUNT(*) FROM job_ticks WHERE job = '{JOB}' AND how = 'manual'") == str(before + 1)
    slot = site.sql(f"SELECT DATE_FORMAT(MAX(slot), '%Y-%m-%d %H:%i:%s') {runs} AND manual = 1")
    line = job_line(site.invoke("jobs.list", "--swarm"))
    since = f"SELECT COUNT(*) {runs} AND manual = 0 AND started_at > (SELECT MAX(started_at) {runs} AND manual = 1)"
    assert f"  last: {slot} ok in " in line or site.sql(since) != "0", line  # or a scheduled slot started since


def test_jobs_run_of_an_unknown_job_on_the_stack_is_one_line(site):
    done = site.invoke("jobs.run", "NO_SUCH_JOB", "--swarm")
    assert done.returncode == 1
    assert_one_line(done.stdout, "no job 'NO_SUCH_JOB'", f"the declared jobs: {JOB}", "invoke jobs.list")


def test_status_on_the_stack_shows_the_jobs_last_scheduled_run(site):
    last = (f"SELECT DATE_FORMAT(slot, '%Y-%m-%dT%H:%i:%sZ'), status FROM lifecycle_job_runs WHERE job = '{JOB}' "
            "AND manual = 0 AND status NOT IN ('running', 'skipped') ORDER BY slot DESC LIMIT 1")  # fmt: skip
    wait_for_the_scheduler(site)
    before = wait_for(lambda: site.sql(last), timeout=2 * JOB_EVERY + 60, what=f"a scheduled run of {JOB}")
    done = site.invoke("status", "--json")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    line = {line["name"]: line for line in report["lines"]}[f"job {JOB}"]
    shown = {f"last {' '.join(row.split())}" for row in (before, site.sql(last))}  # a slot may end meanwhile
    assert any(line["text"].startswith(text) for text in shown), (line, shown)
    assert line["ok"] or line["fix"].startswith(f"docker service logs {site.stack}_scheduler"), line
