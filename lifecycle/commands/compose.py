"""The one place that builds `docker compose` command lines (plain `docker` ones: lifecycle/commands/docker.py).

Every builder is named `<verb>_argv` and returns an argument list; callers run it through a `Runner`.
Nothing here runs anything, and nothing checks a stage: a `Stage` is already valid.
"""

from __future__ import annotations

from collections.abc import Sequence

from lifecycle.settings import Settings
from lifecycle.stages import Stage

COMPOSE_FILE = "docker/compose.yaml"
DB_SERVICE = "db"
DB_VOLUME = "db-data"  # COMPOSE_FILE's volume of the database: `<project>_db-data` on the engine
MANAGE = ("python", "manage.py")  # how the app images run a Django management command
DEBUG_FILE = "docker/compose.debug.yaml"  # the dev server under debugpy
MEDIA_FILE = "docker/compose.media.yaml"  # the media volume, when MEDIA=true (lifecycle/media.py)
ALL_PROFILES = "*"
SCHEDULED_STAGES = ("dev", "stage", "prod")  # the stages with a scheduler service, STAGE-scheduler
# Builds run with compose's warnings off: without buildx, compose warns on every build that it falls back from
# bake to its own BuildKit client (and COMPOSE_BAKE=false, the other way out, is deprecated). Errors still show.
BUILD_LOG_LEVEL = ["--log-level", "error"]


def compose_argv(
    settings: Settings,
    *args: str,
    stage: Stage | None = None,
    project: str | None = None,
    file: str = COMPOSE_FILE,
    docker_options: Sequence[str] = (),
) -> list[str]:
    """`docker compose` for this checkout's project; `stage` enables that profile (None: all of them), and its
    scheduler's (STAGE-jobs) when jobs are declared (JOBS). With MEDIA=true the stack file comes with MEDIA_FILE,
    the media volume."""
    media = ["--file", str(settings.root / MEDIA_FILE)] if file == COMPOSE_FILE and settings.typed("MEDIA") else []
    jobs = ["--profile", f"{stage.profile}-jobs"] if stage and scheduled(settings, stage) else []
    return [
        "docker",
        *docker_options,
        "compose",
        "--project-name",
        project or settings.project_name,
        "--file",
        str(settings.root / file),
        *media,
        "--profile",
        stage.profile if stage else ALL_PROFILES,
        *jobs,
        *args,
    ]


def scheduled(settings: Settings, stage: Stage) -> bool:
    """Whether the stage runs a scheduler: jobs are declared and the stage has one."""
    return bool(settings.env.get("JOBS")) and stage.service in SCHEDULED_STAGES


def scheduler_service(stage: Stage) -> str:
    return f"{stage.service}-scheduler"


SCHEDULER = ("python", "-m", "lifecycle_site.scheduler")  # the scheduler's entry point in the app images


def scheduler_argv(settings: Settings, stage: Stage, command: Sequence[str], *, running: bool) -> list[str]:
    """The scheduler's COMMAND (`run NAME`, `last`): in the running scheduler container, or (`running` off) in a
    one-off container of it (db started first)."""
    how = ["exec", "--no-TTY"] if running else ["run", "--rm", "--no-TTY"]
    return compose_argv(settings, *how, scheduler_service(stage), *SCHEDULER, *command, stage=stage)


def build_argv(
    settings: Settings, stage: Stage, *, no_cache: bool = False, pull: bool = False, with_sbom: bool = False
) -> list[str]:
    """Build the stage's image; `with_sbom` also builds its SBOM image (stage.sbom) in the same run, which
    then enables every profile."""
    flags = ["--no-cache"] * no_cache + ["--pull"] * pull
    if with_sbom:
        return compose_argv(settings, "build", *flags, stage.sbom, stage.service, docker_options=BUILD_LOG_LEVEL)
    return compose_argv(settings, "build", *flags, stage.service, stage=stage, docker_options=BUILD_LOG_LEVEL)


def up_argv(
    settings: Settings,
    stage: Stage,
    *,
    project: str | None = None,
    debug: bool = False,
    healthy: bool = True,
    only: str | None = None,
) -> list[str]:
    """Start db and the stage's service detached, returning once every container is healthy (or
    WAIT_TIMEOUT has passed); with `healthy` off, once started (a server paused until a debugger attaches).
    `debug` adds DEBUG_FILE: the dev server under debugpy. `only`: that one service of the profile, without
    starting or waiting for what it depends on, and without waiting for it either."""
    wait = ["--wait", "--wait-timeout", settings["WAIT_TIMEOUT"]] if healthy and not only else []
    service = ["--no-deps", only] if only else []
    argv = compose_argv(settings, "up", "--detach", "--no-build", *wait, *service, stage=stage, project=project)
    if debug:
        at = argv.index("--profile")
        argv[at:at] = ["--file", str(settings.root / DEBUG_FILE)]
    return argv


def db_volume(settings: Settings, project: str | None = None) -> str:
    """The database volume's name on the engine (compose prefixes its volumes with the project)."""
    return f"{project or settings.project_name}_{DB_VOLUME}"


def start_db_argv(
    settings: Settings, *, wait: bool = True, build: bool = True, stage: Stage | None = None,
    project: str | None = None, bounded: bool = False,
) -> list[str]:  # fmt: skip
    """Start the db service alone, detached; `wait`: return once it is healthy (else the caller watches it), failing
    after WAIT_TIMEOUT when `bounded`; `build` off: never build (db has no build, but `up` must not build the stage's
    service on the side)."""
    flags = ["--wait"] * wait + ["--wait-timeout", settings["WAIT_TIMEOUT"]] * (wait and bounded)
    flags += ["--no-build"] * (not build)
    return compose_argv(settings, "up", "--detach", *flags, DB_SERVICE, stage=stage, project=project)


def manage_exec_argv(settings: Settings, service: str, command: Sequence[str]) -> list[str]:
    """`python manage.py COMMAND` in the service's running container, without a TTY."""
    return compose_argv(settings, "exec", "--no-TTY", service, *MANAGE, *command)


def manage_run_argv(
    settings: Settings, stage: Stage, command: Sequence[str], *, tty: bool = False, env: Sequence[str] = ()
) -> list[str]:
    """`python manage.py COMMAND` in a one-off container of the stage (its db started first)."""
    return run_argv(settings, stage, [*MANAGE, *command], tty=tty, env=env)


def down_argv(settings: Settings, *, volumes: bool = False, project: str | None = None) -> list[str]:
    return compose_argv(settings, "down", "--remove-orphans", *["--volumes"] * volumes, project=project)


def logs_argv(
    settings: Settings,
    services: Sequence[str] = (),
    *,
    follow: bool = False,
    tail: str = "200",
    project: str | None = None,
) -> list[str]:
    flags = ["--no-color", "--tail", tail, *["--follow"] * follow]
    return compose_argv(settings, "logs", *flags, *services, project=project)


def ps_argv(settings: Settings, *, project: str | None = None) -> list[str]:
    return compose_argv(settings, "ps", "--all", project=project)


def env_flags(env: Sequence[str]) -> list[str]:
    """`--env NAME=VALUE` or `--env NAME` (compose then takes the value from its own environment) per item."""
    return [flag for item in env for flag in ("--env", item)]


def exec_argv(
    settings: Settings, stage: Stage, command: Sequence[str], *, tty: bool = True, env: Sequence[str] = ()
) -> list[str]:
    flags = ([] if tty else ["--no-TTY"]) + env_flags(env)
    return compose_argv(settings, "exec", *flags, stage.service, *command, stage=stage)


def run_argv(
    settings: Settings,
    stage: Stage,
    command: Sequence[str],
    *,
    name: str | None = None,
    remove: bool = True,
    env: Sequence[str] = (),
    project: str | None = None,
    tty: bool = False,
    volumes: Sequence[str] = (),
) -> list[str]:
    """A one-off container of the stage's service (dependencies started first); volumes: `--volume` items."""
    flags = (["--rm"] if remove else []) + (["--name", name] if name else []) + ([] if tty else ["--no-TTY"])
    flags += env_flags(env) + [flag for item in volumes for flag in ("--volume", item)]
    return compose_argv(settings, "run", *flags, stage.service, *command, stage=stage, project=project)


def config_argv(settings: Settings, stage: Stage) -> list[str]:
    return compose_argv(settings, "config", "--quiet", stage=stage)
