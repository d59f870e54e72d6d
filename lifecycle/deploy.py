"""Deploy the last release to a Docker Swarm: secrets, the database, the migrate job, the rolling update.

Swarm schedules, restarts, updates and rolls back; this module prepares the inputs (the release's
digest, content-named secrets, the stack's variables), runs the commands from `lifecycle.commands.swarm` in the
right order, waits with a deadline while printing progress, and reports. The order of a deploy:

1. refuse bad input before touching anything (stage, replicas, swarm mode, a release, its signature and its
   provenance: skopeo checks them against SIGNING_PUBLIC_KEY, lifecycle/signing.py and provenance.py; the image);
2. create the secrets that do not exist yet (named by a salted hash of their value: swarm.secret_salt);
3. the database (stack.db.yaml alone), until its one replica is healthy;
4. the migrate job with the new image (stack.migrate.yaml alone), until it completes; on failure stop
   here with its last log lines: the app has not been touched;
5. the app (stack.yaml): Swarm's rolling update, start-first, rolled back by Swarm on failure;
6. wait until every replica runs the new digest, or Swarm has rolled back (non-zero exit).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle import deploylock, health, maintenance, media, offline, probes, provenance, signing, tls
from lifecycle.commands import swarm
from lifecycle.confirm import confirm_project
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.release import ReleaseLog
from lifecycle.runner import Runner
from lifecycle.settings import Settings
from lifecycle.stages import PROD, Stage
from lifecycle.swarm_mode import SwarmMode

DEPLOYABLE_STAGES = (PROD,)
POLL_SECONDS = 2.0
FAILED_TASK_STATES = ("failed", "rejected", "orphaned", "remove")
ROLLED_BACK = ("rollback_completed", "rollback_paused")
RM_CONSEQUENCE = "deploy.rm stops the site: it removes the services and network of the stack"


def check_stage(stage: Stage) -> Stage:
    if stage not in DEPLOYABLE_STAGES:
        raise UserError(f"only prod deploys to a swarm, not {stage.name!r}; use --stage prod")
    return stage


def last_release(settings: Settings, stage: Stage) -> str:
    """The image (`name@sha256:...`) of the newest release of stage recorded by `invoke release`."""
    release = ReleaseLog.of(settings).latest(stage)
    if release is None:
        raise UserError(f"no release of {stage} yet; run: invoke release --stage {stage}")
    return swarm.check_digest_reference(release.reference)


def require_trusted(settings: Settings, run: Runner, image: str, dry: bool = False) -> None:
    """The release's signature, then its provenance (signed, about this digest and the code zip its label names)."""
    verdict = signing.require_signed(settings, run, image, dry=dry)
    if verdict.outcome in ("signed", "unsigned"):
        provenance.require(settings, run, image)


def db_in_stack(settings: Settings) -> bool:
    """Only the default DB_HOST means a db service in the swarm; any other name is an external server."""
    return settings["DB_HOST"] == "db"


def stack_files(settings: Settings) -> list[Path]:
    files = [swarm.STACK_FILE, *[swarm.DB_FILE] * db_in_stack(settings)]
    files += [media.STACK_FILE] * media.enabled(settings)  # the media volume (MEDIA=true)
    files += [swarm.JOBS_FILE] * has_jobs(settings)  # the scheduler of [[tool.lifecycle.jobs]]
    return [settings.root / file for file in files]


def has_jobs(settings: Settings) -> bool:
    return bool(settings.env.get("JOBS"))


def secret_values(settings: Settings, certificate: tls.CertFiles) -> dict[str, str]:
    """The secrets this stack needs, from .env and the proxy's certificate; a missing one is bad input."""
    names = [name for name in swarm.SECRETS if name != "DB_ROOT_PASSWORD" or db_in_stack(settings)]
    missing = [name for name in names if not settings.env.get(name)]
    if missing:
        raise UserError(f"{', '.join(missing)} not set; put it in .env (scripts/bootstrap writes them)")
    files = {"TLS_CERT": certificate.cert, "TLS_KEY": certificate.key}
    unreadable = [str(path) for path in files.values() if not path.is_file()]
    if unreadable:
        raise UserError(f"no TLS certificate file {', '.join(unreadable)}; check TLS_CERT_FILE and TLS_KEY_FILE")
    values = {name: path.read_text(encoding="utf-8") for name, path in files.items()}
    return {**{name: settings.env[name] for name in names}, **values}


def is_converged(state: swarm.ServiceState, tasks: list[swarm.Task], image: str, replicas: int) -> bool:
    running = [task for task in tasks if task.desired == "Running" and task.status == "running"]
    return len(running) == replicas and all(task.image == image for task in running)


def progress_line(state: swarm.ServiceState, tasks: list[swarm.Task], image: str, replicas: int) -> str:
    running = [task for task in tasks if task.desired == "Running" and task.status == "running"]
    new = sum(task.image == image for task in running)
    update = state.update_state or "no update"
    return f"app: {new}/{replicas} replicas on {swarm.short(image)}, {len(running)} running; update: {update}"


@dataclass
class Deployer(SwarmMode):
    ctx: Context

    @property
    def stack(self) -> str:
        return self.settings.project_name

    @property
    def app(self) -> str:
        return swarm.service_name(self.stack, "app")

    @property
    def scheduler(self) -> str:
        return swarm.service_name(self.stack, "scheduler")

    @property
    def lock(self) -> deploylock.DeployLock:
        """One deploy or rollback at a time on this stack, from whichever checkout (lifecycle/deploylock.py)."""
        timeout = self.settings.typed("DEPLOY_LOCK_TIMEOUT")
        clock = self.ctx.clock
        return deploylock.DeployLock(
            self.stack, self.settings.root, self.run, timeout, clock.sleep, clock.now, say=self.say
        )

    @contextlib.contextmanager
    def locked(self, action: str, what: str, wait: object) -> Iterator[None]:
        if self.dry:
            yield
            return
        with self.lock.held(action, what, deploylock.check_wait(wait)) as holder:
            self.say(f"deploy lock taken: {holder.line()}")
            yield

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.settings['HTTPS_PORT']}/"

    def env(self, image: str, replicas: int, secrets: Mapping[str, str], proxy_image: str) -> dict[str, str]:
        """The stack files' variables: the settings, the images, the replicas and the secrets' names."""
        names = {f"{variable}_SECRET": name for variable, name in secrets.items()}
        config = swarm.content_name(self.stack, "haproxy", (self.settings.root / swarm.PROXY_CONFIG).read_bytes())
        page = maintenance.page_file(self.settings)
        return {
            **self.settings.env,
            "APP_IMAGE": image,
            "REPLICAS": str(replicas),
            "PROXY_IMAGE": proxy_image,
            "PROXY_CONFIG": config,
            "MAINTENANCE_PAGE_FILE": str(page),
            "PROXY_PAGE_CONFIG": swarm.content_name(self.stack, "maintenance", page.read_bytes()),
            **names,
        }

    def service(self, name: str) -> swarm.ServiceState | None:
        answer = self.run(swarm.service_inspect(name), warn=True, capture=True)
        return swarm.ServiceState.parse(answer.stdout) if answer.ok and answer.stdout.strip() else None

    def tasks(self, name: str) -> list[swarm.Task]:
        answer = self.run(swarm.service_tasks(name), warn=True, capture=True)
        return swarm.parse_tasks(answer.stdout) if answer.ok else []

    def require_image(self, image: str) -> None:
        if not self.run(swarm.pull(image), warn=True, capture=True).ok:
            raise UserError(
                f"the registry no longer has {swarm.short(image)}; run: invoke release --stage prod (nothing changed)"
            )

    def require_db_node(self) -> None:
        label = self.settings["DB_NODE_LABEL"]
        answer = self.run(swarm.nodes_labelled(label), warn=True, capture=True)
        if answer.ok and not answer.stdout.strip():
            raise UserError(
                f"no swarm node is labelled {label}=true for the database; "
                f"run: docker node update --label-add {label}=true NODE (invoke swarm.init does it here)"
            )

    # ------------------------------------------------------------------------------------- secrets
    def ensure_secrets(self) -> dict[str, str]:
        """Create each content-named secret that does not exist yet; return variable -> secret name."""
        names = {}
        certificate = tls.cert_files(self.settings) if self.dry else tls.ensure_certificate(self.settings, self.run)
        salt = swarm.secret_salt(self.settings.root, create=not self.dry)
        with tempfile.TemporaryDirectory(prefix="lifecycle-secrets-") as folder:
            for variable, value in secret_values(self.settings, certificate).items():
                name = names[variable] = swarm.content_name(self.stack, variable, value, salt)
                if self.dry or self.run(swarm.secret_inspect(name), warn=True, capture=True).ok:
                    continue
                file = Path(folder) / variable.lower()
                file.touch(mode=0o600)
                file.write_text(value, encoding="utf-8")
                self.run(swarm.secret_create(name, file, self.stack), capture=True)
                self.say(f"secret {name} created")
        return names

    # ----------------------------------------------------------------------------------------- waits
    def wait(self, what: str, done: Callable[[], str | None], timeout: float) -> str:
        """Poll done() until it returns a non-empty answer; print each new progress line; one line at the deadline."""
        if self.dry:
            return ""
        message = f"{what} did not finish within {timeout:.0f}s (DEPLOY_TIMEOUT); see invoke deploy.status"
        return self.ctx.wait_until(done, timeout, POLL_SECONDS, message)

    def wait_running(self, service: str, timeout: float) -> None:
        """Until every task of the service that Swarm wants running runs (with a health check: is healthy, as
        Swarm reports it); for the global proxy, that is one on every node."""
        name = swarm.service_name(self.stack, service)
        self.wait(f"the {service} service", lambda: "up" if swarm.all_running(self.tasks(name)) else None, timeout)
        self.say(f"{service}: running")

    def migrate(self, env: Mapping[str, str], timeout: float) -> None:
        """Run the migrate job once with the new image; on failure, raise with its last log lines."""
        name = swarm.service_name(self.stack, "migrate")
        self.remove_job(name)  # a job left by an interrupted deploy
        self.run(swarm.stack_deploy(self.stack, [self.settings.root / swarm.MIGRATE_FILE]), env=env)

        def finished() -> str | None:
            states = [task.status for task in self.tasks(name)]
            if "complete" in states:
                return "complete"
            return next((state for state in states if state in FAILED_TASK_STATES), None)

        try:
            outcome = self.wait("the migrate job", finished, timeout)
            if outcome and outcome != "complete":
                self.show_job_logs(name)
                raise UserError(f"the migrate job {outcome}; nothing else was changed, the app runs as before")
        finally:
            self.remove_job(name)
        self.say("migrate: complete")

    def show_job_logs(self, name: str) -> None:
        """The failed job's last lines, from its container on this node (`docker service logs` can hang)."""
        containers = self.run(swarm.stopped_task_containers(name), warn=True, capture=True).stdout.split()
        for container in containers:
            self.run(swarm.container_logs(container), warn=True)
        if not containers:
            self.say(f"the job ran on another node: docker service logs {name}")

    def remove_job(self, name: str) -> None:
        """The job's service, and the exited containers Swarm leaves behind on this node."""
        self.run(swarm.service_rm(name), warn=True, capture=True)
        left = self.run(swarm.stopped_task_containers(name), warn=True, capture=True).stdout.split()
        if left:
            self.run(swarm.container_rm(*left), warn=True, capture=True)

    def wait_app(self, image: str, replicas: int, before: swarm.ServiceState | None, timeout: float) -> None:
        """Until every replica runs image and, when the deploy changed the replicas' spec, Swarm's rolling update
        has completed (its monitor window included); one line when Swarm rolled it back instead."""
        after = self.service(self.app)
        rolling = before is not None and after is not None and after.template != before.template
        started = before.update_started if before else ""
        shown = [""]

        def converged() -> str | None:
            state = self.service(self.app)
            if state is None:
                return None
            tasks = self.tasks(self.app)
            line = progress_line(state, tasks, image, replicas)
            if line != shown[0]:
                self.say(line)
                shown[0] = line
            fresh = state.update_started != started
            if fresh and state.update_state in ROLLED_BACK:
                errors = sorted({task.error for task in tasks if task.image == image and task.error})
                why = "; ".join(errors) or state.update_message
                raise UserError(
                    f"{swarm.short(image)} failed ({why}): Swarm rolled the app back to {swarm.short(state.image)}; "
                    "see invoke deploy.status"
                )
            if fresh and state.update_state == "paused":
                raise UserError(f"the update to {swarm.short(image)} paused: {state.update_message}")
            finished = not rolling or (fresh and state.update_state == "completed")
            return "converged" if finished and is_converged(state, tasks, image, replicas) else None

        self.wait(f"the update to {swarm.short(image)}", converged, timeout)

    def wait_served(self, timeout: float) -> None:
        """Until this node's proxy answers HEALTH_PATH over HTTPS (every node runs one: the proxy is global). With
        DOCKER_HOST at another engine its port is on that node, not here: Swarm's health-gated update said enough."""
        port = self.settings.typed("HTTPS_PORT")
        if not probes.engine_is_local(self.settings.env):
            engine = self.settings.env.get("DOCKER_HOST") or "the engine of DOCKER_CONTEXT"
            self.say(f"the proxy serves HTTPS on port {port} of every node of the swarm at {engine}")
            return
        path = self.settings["HEALTH_PATH"]
        answers = lambda: "ok" if probes.https_health_answers(port, path=path) else None  # noqa: E731
        self.wait(f"HTTPS on port {port}", answers, timeout)

    # --------------------------------------------------------------------------------------- actions
    def deploy(self, stage: Stage, replicas: int | None = None, wait: object = None) -> str:
        """The last release of `stage` on `replicas` app replicas (DEPLOY_REPLICAS when None), under the deploy
        lock: `wait` seconds for another deploy or rollback to finish (DEPLOY_LOCK_WAIT when None)."""
        check_stage(stage)
        count = self.settings.typed("DEPLOY_REPLICAS") if replicas is None else replicas
        wait = self.settings.typed("DEPLOY_LOCK_WAIT") if wait is None else wait
        deploylock.check_wait(wait)
        self.check_health_timing()
        self.require_swarm()
        image = last_release(self.settings, stage)
        require_trusted(self.settings, self.run, image, dry=self.dry)  # read only: before the lock
        with self.locked("deploy", f"{swarm.short(image)} with {count} replicas", wait):
            self.deploy_locked(image, count)
        self.say(f"deployed {swarm.short(image)} with {count} replicas: {self.url}")  # the last line: the lock is free
        return self.url

    def check_health_timing(self) -> None:
        """One line when the swarm app's health timing cannot work; else the grace a new replica gets."""
        typed = self.settings.typed
        timing = [typed(name) for name in ("APP_HEALTH_START_PERIOD", "APP_HEALTH_INTERVAL", "APP_HEALTH_RETRIES")]
        refusal = health.swarm_timing_refusal(*timing, typed("APP_UPDATE_MONITOR"), typed("DEPLOY_TIMEOUT"))
        if refusal:
            raise UserError(refusal)
        self.say(f"a new replica has {health.swarm_grace(*timing)} s to answer {self.settings['HEALTH_PATH']} "
                 "once (APP_HEALTH_START_PERIOD + APP_HEALTH_RETRIES x APP_HEALTH_INTERVAL)")  # fmt: skip

    def deploy_locked(self, image: str, count: int) -> None:
        timeout = self.settings.typed("DEPLOY_TIMEOUT")
        if not self.dry:
            self.require_image(image)
        if db_in_stack(self.settings) and not self.dry:
            self.require_db_node()
        proxy = self.settings["PROXY_IMAGE"]
        if not self.dry:  # the official image when present or pullable, else the offline one (made when missing)
            proxy = offline.available_or_offline(self.settings, self.run, "proxy", proxy)
        env = self.env(image, count, self.ensure_secrets(), proxy)
        before = self.service(self.app)
        if db_in_stack(self.settings):
            self.run(swarm.stack_deploy(self.stack, [self.settings.root / swarm.DB_FILE]), env=env)
            self.wait_running("db", timeout)
        self.migrate(env, timeout)
        self.run(swarm.stack_deploy(self.stack, stack_files(self.settings)), env=env)
        if not has_jobs(self.settings) and self.service(self.scheduler):  # jobs no longer declared
            self.run(swarm.service_rm(self.scheduler))
        self.wait_app(image, count, before, timeout)
        self.wait_running("proxy", timeout)
        # A proxy the update replaced starts with maintenance off: on again when it was on.
        maintenance.Maintenance(self.ctx).reapply("swarm")
        self.wait_served(timeout)

    def rollback(self, wait: object = None) -> str:
        wait = self.settings.typed("DEPLOY_LOCK_WAIT") if wait is None else wait
        deploylock.check_wait(wait)
        self.require_swarm()
        with self.locked("rollback", self.app, wait):
            target = self.rollback_locked()
        self.say(f"rolled back to {swarm.short(target)}: {self.url}")  # the last line: the lock is free
        return target

    def unlock(self) -> None:
        self.require_swarm()
        self.say(self.lock.unlock())

    def rollback_locked(self) -> str:
        state = self.service(self.app)
        if state is None:
            raise UserError(f"nothing is deployed in stack {self.stack}; run: invoke deploy --stage prod")
        if not state.previous_image:
            raise UserError(f"{self.app} has no previous version to roll back to")
        target = state.previous_image
        self.run(swarm.service_rollback(self.app))
        scheduler = self.service(self.scheduler)
        if scheduler and scheduler.previous_image:  # the jobs run the release the app runs
            self.run(swarm.service_rollback(self.scheduler))
        self.wait(f"the rollback to {swarm.short(target)}", lambda: self.rolled_back(target, state.replicas),
                  self.settings.typed("DEPLOY_TIMEOUT"))  # fmt: skip
        self.wait_served(self.settings.typed("DEPLOY_TIMEOUT"))
        return target

    def rolled_back(self, image: str, replicas: int) -> str | None:
        state = self.service(self.app)
        return "done" if state and is_converged(state, self.tasks(self.app), image, replicas) else None

    def status(self) -> None:
        self.require_swarm()
        self.run(swarm.stack_services(self.stack), warn=True)
        self.run(swarm.stack_tasks(self.stack), warn=True)
        state = self.service(self.app)
        if state is None:
            print(f"nothing is deployed in stack {self.stack}; run: invoke deploy --stage prod", flush=True)
        else:
            update = state.update_state or "none yet"
            print(f"app runs {state.image}; last update: {update} {state.update_message}".rstrip(), flush=True)
        holder = self.lock.holder()
        print(f"deploy lock: held by {holder.line()}" if holder else "deploy lock: free", flush=True)
        for entry in deploylock.read_log(self.settings.root)[-3:]:
            print(f"{entry.at} {entry.who}@{entry.host} {entry.action} {entry.what}: {entry.outcome}", flush=True)

    def remove(self, yes: bool = False, ask: Callable[[str], str] | None = None) -> None:
        """Remove the stack's services and network; its volumes and secrets stay. Asks for the name unless `yes`."""
        self.require_swarm()
        confirm_project(self.stack, RM_CONSEQUENCE, yes, ask)
        self.run(swarm.stack_rm(self.stack))
        self.wait(
            f"removal of stack {self.stack}",
            lambda: "gone" if not self.run(swarm.stack_networks(self.stack), capture=True).stdout.strip() else None,
            self.settings.typed("DEPLOY_TIMEOUT"),
        )
        self.say(f"stack {self.stack} removed; its database volume and secrets are kept")
