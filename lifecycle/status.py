"""`invoke status`: one screen about the running site, compose's stages and the swarm stack, in under 2 s.

Probes first (read-only docker/openssl commands, run concurrently, each with a deadline), then a pure report: each
line is ok or not, and a line that is not says what to run. The probes' answers are plain strings, so every
decision is unit-tested without an engine (tests/unit/test_status.py).
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from lifecycle import backup_file, deploylock, maintenance, tls
from lifecycle.commands import compose, dbclient, docker, haproxy, openssl, swarm
from lifecycle.context import Context, UsesContext
from lifecycle.errors import UserError
from lifecycle.jobs import SUCCEEDED, SUMMARY_SQL, LastRun, no_runs_table, parse_summary, read_jobs
from lifecycle.release import ReleaseLog
from lifecycle.runner import Result

PROBE_SECONDS = 1.5  # each probe's deadline: the whole report stays under 2 s
CERT_WARN_DAYS = 14
BACKUP_WARN_HOURS = 26  # a daily backup, with slack
APP_SERVICES = ("prod", "stage", "dev")


@dataclass(frozen=True)
class Container:
    service: str
    state: str  # running, exited, ...
    health: str  # healthy, unhealthy, starting, "" (no health check)
    image_id: str
    image: str
    id: str


def parse_containers(text: str) -> list[Container]:
    found = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 6:
            found.append(Container(*parts))
    return found


def parse_image_ids(text: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


@dataclass(frozen=True)
class Service:
    name: str
    running: int
    wanted: int
    image: str


def parse_services(text: str) -> list[Service]:
    """`NAME\tRUNNING/WANTED[ (max N per node)]\tIMAGE`; a global service shows `1/1`."""
    found = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        running, _, wanted = parts[1].split(" ")[0].partition("/")
        if running.isdigit() and wanted.isdigit():
            found.append(Service(parts[0], int(running), int(wanted), parts[2]))
    return found


def parse_end_date(text: str) -> dt.datetime | None:
    """`notAfter=Mar  4 07:00:00 2027 GMT` (openssl x509 -enddate)."""
    value = text.strip().removeprefix("notAfter=")
    try:
        return dt.datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def pending_from_health(status_code: int, body: str) -> list[str] | None:
    """The app's health answer (django_site/views.py): 200 means every migration is applied; 503 "migrations pending"
    lists them; anything else cannot tell (None). Asking the running app costs one request, where `migrate --plan`
    would start Django in a new process (3 s on a loaded 2-core host)."""
    if status_code == 200:
        return []
    try:
        data = json.loads(body)
    except ValueError:
        return None
    pending = data.get("pending") if isinstance(data, dict) else None
    return [str(name) for name in pending] if isinstance(pending, list) and pending else None


def get_health(url: str) -> tuple[int, str]:
    """Probe: one GET with PROBE_SECONDS' deadline; (0, why) when nothing answers. Loopback only, certificate not
    checked (the report reads the app's answer; `invoke status` checks the certificate's expiry on its own line)."""
    context = ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS, context=context) as response:
            return response.status, response.read(65536).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(65536).decode(errors="replace")
    except (OSError, ValueError) as error:
        return 0, str(error)


# ------------------------------------------------------------------------------------------ the facts
@dataclass
class Facts:
    """What the probes found; None means "could not tell" (a probe failed or timed out)."""

    project: str
    containers: list[Container] = field(default_factory=list)
    built: dict[str, str] = field(default_factory=dict)  # PROJECT:stage -> image id of the last build
    services: list[Service] | None = None  # None: not a swarm manager
    release: str = ""  # the last prod release, name@sha256
    pending: list[str] | None = None
    migrations_where: str = ""  # the container migrate --plan ran in
    cert_end: dt.datetime | None = None
    backup_created: dt.datetime | None = None
    maintenance: dict[str, bool] = field(default_factory=dict)
    lock: str = ""  # the deploy lock's holder line, "" when free
    jobs: list[str] = field(default_factory=list)  # the declared jobs' names
    job_runs: dict[str, LastRun] | None = None  # each job's last run; None: could not tell
    jobs_unknown: str = ""  # why job_runs is None ("": no database runs here)
    jobs_logs: str = ""  # what shows the scheduler's log


@dataclass(frozen=True)
class Line:
    name: str
    ok: bool
    text: str
    fix: str = ""  # what to run when not ok

    def show(self) -> str:
        mark = "ok  " if self.ok else "FIX "
        return f"{mark}{self.name}: {self.text}" + (f"; run: {self.fix}" if self.fix and not self.ok else "")


def report(facts: Facts, now: dt.datetime) -> list[Line]:
    """The facts as lines, each ok or saying what to run."""
    lines: list[Line] = []
    running = [c for c in facts.containers if c.state == "running"]
    for container in sorted(facts.containers, key=lambda c: c.service):
        name = f"compose {container.service}"
        if container.state != "running":
            lines.append(Line(name, False, container.state, f"invoke up --stage {container.service}"))
            continue
        health = container.health or "running (no health check)"
        built = facts.built.get(container.image)
        if container.health and container.health != "healthy":
            lines.append(Line(name, False, health, "invoke logs --service " + container.service))
        elif built and built != container.image_id and container.service in APP_SERVICES:
            lines.append(Line(name, False, f"{health}, runs an older build than {container.image}",
                              f"invoke up --stage {container.service}"))  # fmt: skip
        else:
            lines.append(Line(name, True, f"{health}, {container.image} {container.image_id[7:19]}"))
    if not facts.containers:
        lines.append(Line("compose", True, "nothing running"))
    if facts.services is None:
        lines.append(Line("swarm", True, "not a swarm manager: no stack"))
    elif not facts.services:
        lines.append(Line("swarm", True, f"no stack {facts.project} deployed"))
    for service in facts.services or []:
        name = f"swarm {service.name.removeprefix(facts.project + '_')}"
        replicas = f"{service.running}/{service.wanted} running"
        if service.running < service.wanted:
            lines.append(Line(name, False, replicas, "invoke deploy.status"))
        elif name == "swarm app" and facts.release and service.image != facts.release:
            text = f"{replicas}, {swarm.short(service.image)} is not the last release {swarm.short(facts.release)}"
            lines.append(Line(name, False, text, "invoke deploy"))
        else:
            lines.append(Line(name, True, f"{replicas}, {swarm.short(service.image)}"))
    if facts.lock:
        lines.append(
            Line("deploy lock", False, f"held by {facts.lock}", "invoke deploy.status (stale: invoke deploy.unlock)")
        )
    if facts.pending is None:
        if running:
            text = f"unknown ({facts.migrations_where} health does not say)"
            lines.append(Line("migrations", False, text, "invoke manage 'migrate --plan'"))
    elif facts.pending:
        text = f"{len(facts.pending)} pending in {facts.migrations_where}: {', '.join(facts.pending[:3])}"
        lines.append(Line("migrations", False, text, "invoke manage migrate --stage STAGE, or invoke deploy"))
    else:
        lines.append(Line("migrations", True, f"none pending ({facts.migrations_where})"))
    if facts.backup_created is None:
        lines.append(Line("backup", False, "none yet", "invoke db.backup"))
    else:
        age = (now - facts.backup_created).total_seconds()
        text = f"last one {backup_file.format_age(age)} old"
        lines.append(Line("backup", age < BACKUP_WARN_HOURS * 3600, text, "invoke db.backup"))
    if facts.cert_end is None:
        lines.append(Line("certificate", False, "unreadable or missing", "invoke up --stage prod (makes a local one)"))
    else:
        days = (facts.cert_end - now).total_seconds() / 86400
        text = f"expires {facts.cert_end:%Y-%m-%d} ({days:.0f} days)"
        lines.append(
            Line(
                "certificate",
                days > CERT_WARN_DAYS,
                text,
                "renew it (TLS_CERT_FILE), or delete .lifecycle/tls/server.crt",
            )
        )
    for target, on in sorted(facts.maintenance.items()):
        text = "ON: every request but /health gets the 503 page" if on else "off"
        lines.append(Line(f"maintenance ({target})", not on, text, "invoke maintenance.off"))
    return lines + job_lines(facts)


def job_lines(facts: Facts) -> list[Line]:
    """A line per declared job: its last scheduled run, and whether the last day's slots all ran well."""
    if not facts.jobs and not facts.jobs_unknown:
        return [Line("jobs", True, "none configured")]
    if facts.job_runs is None:
        if not facts.jobs_unknown:
            return [Line("jobs", True, f"{len(facts.jobs)} declared; no database of this project runs here")]
        return [Line("jobs", False, f"last runs unknown: {facts.jobs_unknown}", "invoke jobs.list")]
    lines = []
    for name in facts.jobs:
        run = facts.job_runs.get(name)
        if run is None:
            lines.append(Line(f"job {name}", True, "no run yet"))
            continue
        text = f"last {run.slot} {run.status}"
        if run.status not in SUCCEEDED:
            lines.append(Line(f"job {name}", False, text, f"{facts.jobs_logs} (run it now: invoke jobs.run {name})"))
        elif run.troubles:
            text += f"; {run.troubles} of the last day's slots failed or did not run"
            lines.append(Line(f"job {name}", False, text, facts.jobs_logs))
        else:
            lines.append(Line(f"job {name}", True, text))
    return lines


# ------------------------------------------------------------------------------------------ probing
@dataclass
class Status(UsesContext):
    ctx: Context
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def probe(self, argv: list[str]) -> Result:
        return self.run(argv, warn=True, capture=True, timeout=PROBE_SECONDS)

    def facts(self) -> Facts:
        project = self.settings.project_name
        facts = Facts(project)
        latest = ReleaseLog.of(self.settings).latest("prod")
        facts.release = latest.reference if latest else ""
        folder = self.settings.root / self.settings.typed("BACKUP_DIR")
        manifests = [m for _, m in backup_file.read_manifests(folder) if m]
        facts.backup_created = deploylock.parse_iso(manifests[0].created) if manifests else None
        cert = tls.cert_files(self.settings).cert
        with ThreadPoolExecutor(max_workers=6) as pool:
            listed = pool.submit(self.probe, docker.compose_containers_argv(project))
            services = pool.submit(self.probe, swarm.stack_service_rows(project))
            end = pool.submit(self.probe, openssl.end_date(cert))
            lock = pool.submit(self.probe, swarm.lock_inspect(swarm.deploy_lock_name(project)))
            swarm_proxies = pool.submit(self.probe, haproxy.swarm_proxies(project))
            app_tasks = pool.submit(self.probe, swarm.task_containers(project, "app"))
            db_tasks = pool.submit(self.probe, swarm.task_containers(project, compose.DB_SERVICE))
            ids = listed.result().stdout.split()
            inspected = pool.submit(self.probe, docker.container_rows_argv(ids)) if ids else None
            facts.containers = parse_containers(inspected.result().stdout) if inspected else []
            images = sorted({c.image for c in facts.containers if c.service in APP_SERVICES})
            built = pool.submit(self.probe, docker.image_tag_ids_argv(images)) if images else None
            app = next((c for c in facts.containers if c.service in APP_SERVICES and c.state == "running"), None)
            health = self.settings["HEALTH_PATH"]
            if app is not None:
                where, url = app.service, f"http://127.0.0.1:{self.settings['APP_PORT']}{health}"
            else:
                where, url = "swarm app", f"https://127.0.0.1:{self.settings['HTTPS_PORT']}{health}"
            plan = pool.submit(get_health, url) if app is not None or app_tasks.result().stdout.strip() else None
            proxies = {"compose": [c.id for c in facts.containers if c.service == "proxy" and c.state == "running"],
                       "swarm": swarm_proxies.result().stdout.split()}  # fmt: skip
            shows = {target: [pool.submit(self.probe, haproxy.runtime_argv(c, maintenance.show_command()))
                              for c in containers] for target, containers in proxies.items() if containers}  # fmt: skip
            answer = services.result()
            facts.services = parse_services(answer.stdout) if answer.ok else None
            answer = end.result()
            facts.cert_end = parse_end_date(answer.stdout) if answer.ok else None
            answer = lock.result()
            facts.lock = (
                deploylock.Holder.from_inspect(answer.stdout).line() if answer.ok and answer.stdout.strip() else ""
            )
            facts.built = parse_image_ids(built.result().stdout) if built else {}
            if plan is not None:
                facts.pending = pending_from_health(*plan.result())
                facts.migrations_where = where
            else:
                facts.pending, facts.migrations_where = [], "nothing running"
            facts.maintenance = {target: all(maintenance.is_on(f.result().stdout) for f in futures)
                                 for target, futures in shows.items()}  # fmt: skip
            self.jobs_facts(facts, db_tasks.result().stdout.split())
        return facts

    def jobs_facts(self, facts: Facts, db_tasks: list[str]) -> None:
        """The declared jobs and, from the database running here (compose's, else the stack's task on this node),
        each one's last run."""
        try:
            facts.jobs = [job.name for job in read_jobs(self.settings.root)]
        except UserError as error:
            facts.jobs_unknown = str(error)
            return
        compose_db = [c.id for c in facts.containers if c.service == compose.DB_SERVICE and c.state == "running"]
        db = (compose_db or db_tasks or [""])[0]
        if not facts.jobs or not db:
            return
        schedulers = [c.service for c in facts.containers if c.service.endswith("-scheduler")]
        facts.jobs_logs = (
            f"invoke logs --service {schedulers[0]}"
            if compose_db and schedulers
            else f"docker service logs {facts.project}_scheduler"
        )
        answer = self.probe(dbclient.app_query(db, SUMMARY_SQL))
        if answer.ok:
            facts.job_runs = parse_summary(answer.stdout)
        elif no_runs_table(answer.stderr):
            facts.job_runs = {}  # no scheduler has made its table yet
        else:
            facts.jobs_unknown = (answer.stderr.strip().splitlines() or ["the database did not answer"])[-1]

    def lines(self) -> list[Line]:
        return report(self.facts(), self.now())


def as_json(lines: Sequence[Line], seconds: float) -> str:
    return json.dumps({"ok": all(line.ok for line in lines), "seconds": round(seconds, 3),
                       "lines": [asdict(line) for line in lines]}, indent=2)  # fmt: skip


def as_text(lines: Sequence[Line], seconds: float) -> str:
    wrong = sum(not line.ok for line in lines)
    summary = (
        f"{len(lines)} checks, {wrong} to fix ({seconds:.1f} s)" if wrong else f"all {len(lines)} ok ({seconds:.1f} s)"
    )
    return "\n".join([*(line.show() for line in lines), summary])
