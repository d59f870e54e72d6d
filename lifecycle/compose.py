"""The one place that builds `docker compose` (and plain `docker`) command lines.

Every function returns an argument list; callers run it through a `Runner`. Nothing here runs anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from lifecycle.errors import UserError
from lifecycle.settings import STAGES, Settings

COMPOSE_FILE = "docker/compose.yaml"
ALL_PROFILES = "*"
# Builds run with compose's warnings off: without buildx, compose warns on every build that it falls back from
# bake to its own BuildKit client (and COMPOSE_BAKE=false, the other way out, is deprecated). Errors still show.
BUILD_LOG_LEVEL = ["--log-level", "error"]


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; use one of: {', '.join(STAGES)}")
    return stage


def compose(
    settings: Settings,
    *args: str,
    stage: str | None = None,
    project: str | None = None,
    file: str = COMPOSE_FILE,
    docker_options: Sequence[str] = (),
) -> list[str]:
    """`docker compose` for this checkout's project; `stage` enables that profile (None: all of them)."""
    profile = check_stage(stage) if stage else ALL_PROFILES
    return [
        "docker",
        *docker_options,
        "compose",
        "--project-name",
        project or settings.project_name,
        "--file",
        str(settings.root / file),
        "--profile",
        profile,
        *args,
    ]


def build(settings: Settings, stage: str, *, no_cache: bool = False, pull: bool = False) -> list[str]:
    flags = ["--no-cache"] * no_cache + ["--pull"] * pull
    return compose(settings, "build", *flags, check_stage(stage), stage=stage, docker_options=BUILD_LOG_LEVEL)


def up(settings: Settings, stage: str, *, wait_timeout: int = 180, project: str | None = None) -> list[str]:
    """Start db and the stage's service detached, returning once every container is healthy."""
    return compose(
        settings,
        "up",
        "--detach",
        "--no-build",
        "--wait",
        "--wait-timeout",
        str(wait_timeout),
        stage=stage,
        project=project,
    )


def down(settings: Settings, *, volumes: bool = False, project: str | None = None) -> list[str]:
    return compose(settings, "down", "--remove-orphans", *["--volumes"] * volumes, project=project)


def logs(
    settings: Settings,
    services: Sequence[str] = (),
    *,
    follow: bool = False,
    tail: str = "200",
    project: str | None = None,
) -> list[str]:
    return compose(settings, "logs", "--no-color", "--tail", tail, *["--follow"] * follow, *services, project=project)


def ps(settings: Settings, *, project: str | None = None) -> list[str]:
    return compose(settings, "ps", "--all", project=project)


def env_flags(env: Sequence[str]) -> list[str]:
    """`--env NAME=VALUE` or `--env NAME` (compose then takes the value from its own environment) per item."""
    return [flag for item in env for flag in ("--env", item)]


def exec_(
    settings: Settings, stage: str, command: Sequence[str], *, tty: bool = True, env: Sequence[str] = ()
) -> list[str]:
    flags = ([] if tty else ["--no-TTY"]) + env_flags(env)
    return compose(settings, "exec", *flags, check_stage(stage), *command, stage=stage)


def run(
    settings: Settings,
    stage: str,
    command: Sequence[str],
    *,
    name: str | None = None,
    remove: bool = True,
    env: Sequence[str] = (),
    project: str | None = None,
    tty: bool = False,
) -> list[str]:
    """A one-off container of the stage's service (dependencies started first)."""
    flags = (["--rm"] if remove else []) + (["--name", name] if name else []) + ([] if tty else ["--no-TTY"])
    flags += env_flags(env)
    return compose(settings, "run", *flags, check_stage(stage), *command, stage=stage, project=project)


def config_check(settings: Settings, stage: str) -> list[str]:
    return compose(settings, "config", "--quiet", stage=stage)


def docker(*args: str) -> list[str]:
    """Plain docker CLI calls (inspect, cp, image rm): the only other door to the engine."""
    return ["docker", *args]
