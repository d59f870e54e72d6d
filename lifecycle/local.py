"""The local compose lifecycle of one checkout, which both front ends run: zip, build, up, down, qa, clean.

`Local` sequences over a `Context` (settings, runner, say, dry run, clock): decisions are plain functions,
commands come from `lifecycle.commands` (compose, docker, dbclient); this module only sequences them. ("Stack"
is the Swarm stack: lifecycle/deploy.py.) Zip and build are `Builder`'s (lifecycle/build.py), qa is `QaRun`'s
(lifecycle/qa.py): `Local` inherits both.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from enum import Enum

from lifecycle import (
    codezip,
    container_env,
    sbom,
    secretfiles,
    testmon,
)
from lifecycle.build import Builder
from lifecycle.buildinputs import CERTS_DIR
from lifecycle.commands import compose, dbclient, docker
from lifecycle.confirm import confirm_project
from lifecycle.container_env import container_env_items
from lifecycle.context import Context
from lifecycle.dbserver import ServerGuard
from lifecycle.errors import UserError
from lifecycle.health import DB_DENIED, container_verdict, db_verdict
from lifecycle.lazy import lazy_module
from lifecycle.probes import (
    image_owner,
    image_present,
    local_tags,
    port_is_free,
    service_container,
    superseded_builds,
    volume_exists,
)
from lifecycle.qa import QaRun
from lifecycle.runner import piped_input, stdin_is_open, stdin_is_terminal
from lifecycle.settings import Settings
from lifecycle.stages import STAGES, Stage

# Only some steps need these: the db tasks the backup code (tar, binlog, media), prod's proxy the rest.
backup = lazy_module("lifecycle.backup")
maintenance = lazy_module("lifecycle.maintenance")
offline = lazy_module("lifecycle.offline")
stack_data = lazy_module("lifecycle.stack_data")
tls = lazy_module("lifecycle.tls")

DB_POLL_SECONDS = 3  # between looks at the db's health while `up` waits for it
HEALTH_POLL_SECONDS = 0.2  # between looks at the app's health once db is up: how late `up` may return


def confirm_volume_deletion(project: str, yes: bool, ask: Callable[[str], str] | None) -> None:
    """Deleting the database volume needs --yes, or the project name typed at a terminal."""
    confirm_project(project, "--volumes deletes the database", yes, ask)


def ensure_secret_key(settings: Settings, stage: Stage) -> None:
    """stage and prod refuse a missing secret, or a published default one, in one line (secretfiles.refusal)."""
    problem = secretfiles.refusal(settings.env, stage)
    if problem:
        raise UserError(problem)


NO_SQL_PIPED = (
    "invoke db.shell has no terminal and nothing piped in (stdin closed, /dev/null or empty); pipe SQL in, "
    "e.g. echo 'SELECT 1' | invoke db.shell, or run it at a terminal; nothing was run"
)


class Debugger(Enum):
    """How `up --debug` runs the dev server under debugpy; the value is DEBUGPY, which the entrypoint reads."""

    LISTEN = "listen"  # serve at once; a client may attach later
    WAIT = "wait"  # start the server only once a client attaches

    @classmethod
    def of(cls, debug: bool, wait: bool) -> Debugger | None:
        """The task's --debug and --wait flags as one value (None: no debugger)."""
        return (cls.WAIT if wait else cls.LISTEN) if debug else None


class Local(Builder, QaRun):
    """The compose lifecycle of one checkout, sequenced over a `Context`."""

    def __init__(self, ctx: Context) -> None:
        # Every compose call of the stack needs SECRETS_DIR, and the files in it (lifecycle/secretfiles.py).
        self.ctx = ctx.override(**secretfiles.prepare(ctx.settings, write=not ctx.dry))

    def database(self, on_stack: bool = False) -> backup.Database:
        """This checkout's compose database, or (on_stack) the swarm stack's, through its db task on this node."""
        return stack_data.StackDatabase(self.ctx) if on_stack else backup.Database(self.ctx)

    # ------------------------------------------------------------------------------------ up / down
    def app_url(self) -> str:
        """The app itself, plain HTTP on APP_PORT (for prod: /health only, the rest redirects to HTTPS)."""
        return f"http://127.0.0.1:{self.settings['APP_PORT']}/"

    def url(self, stage: Stage) -> str:
        """Where a user opens the stage: its HTTPS proxy when it has one, else the app."""
        if stage.behind_https_proxy:
            return f"https://127.0.0.1:{self.settings['HTTPS_PORT']}/"
        return self.app_url()

    def ensure_port_free(self, stage: Stage, setting: str = "APP_PORT", service: str | None = None) -> None:
        """A taken port (APP_PORT, or `setting`) fails early with the fix, unless it is this stage's own running
        container (or `service`'s)."""
        port = self.settings.typed(setting)
        if self.dry or not stage.serves_http or port_is_free(port):
            return
        ours = service_container(self.run, self.settings.project_name, service or stage.service)
        if ours is None or not ours.running:
            raise UserError(
                f"127.0.0.1:{port} ({setting}) is already in use; stop what listens there "
                f"(invoke down, if it is another stage of this checkout) or set {setting} in .env"
            )

    def proxy_settings(self) -> Settings:
        """The settings plus what the proxy service needs: its image (official when present or pullable, else
        offline) and the certificate's absolute paths (the local one made when missing)."""
        if self.dry:
            return self.settings
        files = tls.ensure_certificate(self.settings, self.run)
        image = offline.available_or_offline(self.settings, self.run, "proxy", self.settings["PROXY_IMAGE"])
        page = str(maintenance.page_file(self.settings))
        return self.settings.override(
            PROXY_IMAGE=image, TLS_CERT_FILE=str(files.cert), TLS_KEY_FILE=str(files.key), MAINTENANCE_PAGE_FILE=page
        )

    def check_image_built(self, stage: Stage) -> None:
        """`up --no-build` runs this checkout's image (named after its compose project, so no other checkout's)."""
        image = self.settings.image(stage)
        if not image_present(self.run, image):
            raise UserError(f"{image} is not built yet; run invoke up --stage {stage} without --no-build")

    def ensure_image(self, stage: Stage) -> None:
        """Build the stage's image (code zip included) unless this checkout already has it."""
        if self.dry or not image_present(self.run, self.settings.image(stage)):
            self.build(stage)

    def wait_for_db(self, stage: Stage, timeout: float) -> bool:
        """Start db and watch its health, so a refused login says so now instead of at the end of the deadline;
        True when it is healthy at the first look (it ran already, unchanged).

        Only for a volume that exists: the login can be refused only by a database initialised before, with
        other credentials (a new volume is initialised with the current ones)."""
        if self.dry or not volume_exists(self.run, compose.db_volume(self.settings)):
            return False
        env = self.settings.env
        self.run(compose.start_db_argv(self.settings, wait=False, build=False, stage=stage), env=env)
        state = self.state_probe("db")
        looks = []

        def settled() -> str | None:
            verdict = db_verdict(state())
            looks.append(verdict)
            if verdict == "denied":
                raise UserError(DB_DENIED)
            return None if verdict == "waiting" else verdict

        verdict = self.ctx.wait_until(settled, timeout, DB_POLL_SECONDS, None)
        return verdict == "healthy" and len(looks) == 1  # else compose's own wait reports it, with the logs

    def state_probe(self, service: str) -> Callable[[], str]:
        """Asks for the `docker inspect` State (JSON) of the service's container, found once by its labels."""
        found = service_container(self.run, self.settings.project_name, service)
        argv = docker.container_state_argv(found.id if found else service)
        return lambda: self.run(argv, warn=True, capture=True).stdout

    def wait_healthy(self, service: str, timeout: float) -> bool:
        """Until the service's container is healthy (True), or unhealthy, exited or past the timeout (False)."""
        state = self.state_probe(service)

        def settled() -> str | None:
            verdict = container_verdict(state())
            return None if verdict == "waiting" else verdict

        return self.ctx.wait_until(settled, timeout, HEALTH_POLL_SECONDS, None) == "healthy"

    def start_beside_healthy_db(self, settings: Settings, stage: Stage, env: Mapping[str, str], debug: bool) -> bool:
        """With db healthy already: (re)start the stage's service alone and wait for its health here, then start
        the proxy when there is one, and the scheduler when jobs are declared. `compose up --wait` would poll db's
        health, then every container's, on a half-second tick each; this answers as soon as the app's own health
        check passes."""
        self.run(compose.up_argv(settings, stage, debug=debug, only=stage.service), env=env)
        if not self.wait_healthy(stage.service, self.settings.typed("WAIT_TIMEOUT")):
            return False
        if stage.behind_https_proxy:
            self.run(compose.up_argv(settings, stage, only="proxy"), env=env)
        if compose.scheduled(settings, stage):  # its release's jobs: the new image, once the app is healthy
            self.run(compose.up_argv(settings, stage, only=compose.scheduler_service(stage)), env=env)
        return True

    def up(self, stage: Stage, *, build: bool = True, debug: Debugger | None = None, no_backup: bool = False) -> str:
        """Build (unless told not to), start db (watched first when its volume exists) and the stage (prod: and
        its HTTPS proxy), return the URL once all are healthy; WAIT_TIMEOUT bounds each of the two waits.

        `debug`: the dev server under debugpy on 127.0.0.1:DEBUG_PORT; `Debugger.WAIT` starts it only once a client
        attaches, so the task returns once the container runs instead of waiting for health.
        A DB_IMAGE of another major version than the volume's record backs the data up first (unless no_backup).
        """
        if stage.runs_through_qa:
            raise UserError(f"{stage} runs the tests and exits, it is not a service to keep up; use invoke qa")
        if debug and not stage.has_debugger:
            raise UserError(f"--debug needs --stage dev: debugpy is in the dev image only, never in {stage}")
        ensure_secret_key(self.settings, stage)
        container_env.check(self.settings.env)
        self.ensure_port_free(stage)
        settings = self.settings
        if stage.behind_https_proxy:
            self.ensure_port_free(stage, "HTTPS_PORT", "proxy")
            settings = self.proxy_settings()
        settings = settings.override(DB_TEST_DATABASES="yes" if stage.test_databases else "no")
        if debug:
            self.ensure_port_free(stage, "DEBUG_PORT")
        if build:
            self.build(stage)
        elif not self.dry:
            self.check_image_built(stage)
        database = ServerGuard(self.database())
        database.guard_server_change(no_backup=no_backup)
        db_healthy = self.wait_for_db(stage, self.settings.typed("WAIT_TIMEOUT"))
        env = {**settings.env, **({"DEBUGPY": debug.value} if debug else {})}
        paused = debug is Debugger.WAIT
        if db_healthy and not paused:  # the everyday case: a new build of a running stack
            started = self.start_beside_healthy_db(settings, stage, env, bool(debug))
        else:
            argv = compose.up_argv(settings, stage, debug=bool(debug), healthy=not paused)
            started = self.run(argv, env=env, warn=True).ok
        if not started:
            self.run(compose.logs_argv(settings, tail="40"), env=settings.env, warn=True)
            deadline = self.settings["WAIT_TIMEOUT"]
            raise UserError(f"{stage} did not come up healthy (deadline {deadline}s); see the logs above (invoke logs)")
        database.record_server()
        if stage.behind_https_proxy and not self.dry:
            tls.wait_for_https(settings.typed("HTTPS_PORT"), path=settings["HEALTH_PATH"])
            maintenance.Maintenance(self.ctx).reapply("compose")  # a new proxy starts with it off
        if debug:
            waiting = "; the server starts once a client attaches" if paused else ""
            self.say(f"debugpy listens on 127.0.0.1:{self.settings['DEBUG_PORT']}{waiting} (docs/debugging.md)")
        if self.dry:
            self.say(f"dry run: would wait until db and {stage} are healthy, then serve {self.url(stage)}")
            return self.url(stage)
        self.say(f"{stage} is {'started' if paused else 'up and healthy'}: {self.url(stage)}")
        if stage.behind_https_proxy:
            self.say(f"plain HTTP for probes: {self.app_url()}health; trust the certificate: invoke tls.trust")
        return self.url(stage)

    # ---------------------------------------------------------------------------------- manage / shell
    def manage(self, stage: Stage, command: Sequence[str], env_items: Sequence[str] = ()) -> int:
        """`python manage.py COMMAND` in a one-off container of the stage; returns its exit status."""
        if command[:1] == ["dbshell"]:
            raise UserError("the app images have no database client, so dbshell cannot run there; use invoke db.shell")
        flags, secrets = container_env_items(env_items, self.settings.env)
        ensure_secret_key(self.settings, stage)
        self.ensure_image(stage)
        tty = stdin_is_terminal()
        argv = compose.manage_run_argv(self.settings, stage, command, tty=tty, env=flags)
        return self.run(argv, env={**self.settings.env, **secrets}, warn=True, interactive=tty).return_code

    def shell(self, stage: Stage, command: str | None = None, env_items: Sequence[str] = ()) -> int:
        """Bash in the stage's running container: interactive at a terminal, else only `bash -c COMMAND`."""
        tty = stdin_is_terminal()
        if command is None and not tty:
            raise UserError("invoke shell needs a terminal; without one, run a command: invoke shell --command 'CMD'")
        flags, secrets = container_env_items(env_items, self.settings.env)
        bash = ["bash"] if command is None else ["bash", "-c", command]
        argv = compose.exec_argv(self.settings, stage, bash, tty=tty, env=flags)
        return self.run(argv, env={**self.settings.env, **secrets}, warn=True, interactive=tty).return_code

    def db_shell(self, root: bool = False) -> int:
        """The SQL client in the running db service: a prompt at a terminal; without one, it runs the SQL piped in
        and returns the client's exit status. Nothing to read (stdin closed, /dev/null, an empty pipe) is refused
        before anything runs: the client would wait for input forever."""
        tty = stdin_is_terminal()
        if not tty and not stdin_is_open():
            raise UserError(NO_SQL_PIPED)
        database = self.database()
        database.require_running()
        argv = dbclient.shell(self.settings, database.tools(), root=root, tty=tty)
        if tty:
            return self.run(argv, env=self.settings.env, warn=True, interactive=True).return_code
        if self.dry:
            self.say(f"dry run: would pipe stdin into {shlex.join(argv)}")
            return 0
        chunks = piped_input()
        if chunks is None:
            raise UserError(NO_SQL_PIPED)
        return self.streams.stream_in(argv, chunks, env=self.settings.env)

    def down(
        self,
        *,
        volumes: bool = False,
        yes: bool = False,
        project: str | None = None,
        ask: Callable[[str], str] | None = None,
        no_backup: bool = False,
    ) -> None:
        if volumes:
            confirm_volume_deletion(project or self.settings.project_name, yes, ask)
            if project is None:  # another project's volume is not this checkout's data
                self.database().guard_volume_deletion(no_backup=no_backup)
        self.run(compose.down_argv(self.settings, volumes=volumes, project=project), env=self.settings.env)
        if volumes and project is None and not self.dry:  # the next run writes them again, from .env
            secretfiles.remove(self.settings)

    # ---------------------------------------------------------------------------------------- clean
    def clean(
        self,
        *,
        volumes: bool = False,
        yes: bool = False,
        ask: Callable[[str], str] | None = None,
        checkout_files: bool = True,
        no_backup: bool = False,
    ) -> None:
        """Remove what the suite made for this checkout: containers, networks, its stage images (named after its
        compose project) and the local release tags that name them (the registry keeps what was pushed), earlier
        builds they replaced, zip, reports.

        `checkout_files=False` keeps what every project of the checkout shares (reports/, the staged CA
        certificates): the benchmark cleans its own project that way without touching the user's files.
        """
        self.down(volumes=volumes, yes=yes, ask=ask, no_backup=no_backup)
        if volumes:  # the data of `invoke qa --changed`: the next run is the whole suite
            self.run(docker.volume_rm_argv(testmon.volume(self.settings)), warn=True, capture=True)
        project = self.settings.project_name
        images = [self.settings.image(stage) for stage in STAGES]
        images += dict.fromkeys(self.settings.sbom_image(stage) for stage in STAGES)  # stage and prod share one
        owned = [image for image in images if image_present(self.run, image)]
        # Release tags (REGISTRY/PROJ_NAME:...) are shared by every checkout of PROJ_NAME, and so were the images'
        # names before they were named per checkout (PROJ_NAME:STAGE): only those on its own images.
        shared = [
            *local_tags(self.run, self.settings.release_repository),
            *local_tags(self.run, self.settings["PROJ_NAME"]),
        ]
        for image in [tag for tag in dict.fromkeys(shared) if tag not in owned]:
            owner = image_owner(self.run, image)
            if owner == project:
                owned.append(image)
            elif owner is not None:
                self.say(f"keep {image}: built by {owner or 'a checkout without an owner label'}, not by {project}")
        if owned:
            self.run(docker.image_rm_argv(*owned), env=self.settings.env)
        superseded = superseded_builds(self.run, project)
        if superseded:
            self.say(
                f"{'dry run: would remove' if self.dry else 'remove'} {len(superseded)} earlier builds of {project}"
            )
            self.run(docker.image_rm_argv(*superseded), env=self.settings.env, warn=True)
        paths = [self.settings.zip_path, codezip.manifest_path_for(self.settings.zip_path)]
        if checkout_files:
            paths += [self.settings.root / "reports", *(self.settings.root / CERTS_DIR).glob("*.crt")]
            paths += (self.settings.root / sbom.RECORDS).glob("sbom-*.id")
        for path in paths:
            if path.exists():
                self.say(f"{'dry run: would remove' if self.dry else 'remove'} {path.relative_to(self.settings.root)}")
                if self.dry:
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
