"""`invoke doctor` and the preflight every Docker-touching task runs.

Each check gathers one fact through the runner and hands it to a plain function that decides; a
failing check carries the fix, so the user reads one line and knows what to do.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lifecycle.compose import BUILD_LOG_LEVEL, compose, docker
from lifecycle.errors import UserError
from lifecycle.runner import Runner
from lifecycle.settings import Settings

MIN_FREE_GIB = 5
SCRIPT_GLOBS = ("bash_files/*", "scripts/*", ".ci/*", "docker/**/*.sh")
BOOTSTRAP_FIX = "run scripts/bootstrap (Debian/Ubuntu as root) or start Docker Desktop"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.name}: {self.detail}" + ("" if self.ok else f" -> {self.fix}")


def compose_check(version_output: str | None) -> Check:
    """`docker compose version --short` output (None when the command failed) -> is it Compose v2+?"""
    version = (version_output or "").strip().lstrip("v")
    if not version:
        detail = "docker compose is missing (only the old docker-compose v1, or nothing)"
        return Check("compose v2", False, detail, "install the Compose v2 plugin: " + BOOTSTRAP_FIX)
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 2:
        return Check("compose v2", False, f"found Compose {version}", "install the Compose v2 plugin: " + BOOTSTRAP_FIX)
    return Check("compose v2", True, version)


def engine_check(server_version: str | None) -> Check:
    if not server_version:
        return Check("engine", False, "the Docker engine is not reachable (docker version failed)", BOOTSTRAP_FIX)
    return Check("engine", True, f"Docker Engine {server_version.strip()}")


def disk_check(free_bytes: int, where: str) -> Check:
    free_gib = free_bytes / 2**30
    ok = free_gib >= MIN_FREE_GIB
    fix = f"free at least {MIN_FREE_GIB} GiB (docker system df; invoke clean)"
    return Check("disk", ok, f"{free_gib:.1f} GiB free in {where}", fix)


def port_check(port: int, free: bool, ours: bool = False) -> Check:
    """ours: the port is published by this checkout's own stack (invoke up), which is no problem."""
    if ours:
        return Check("port", True, f"127.0.0.1:{port} in use by this checkout's stack")
    fix = f"stop what listens on {port} (ss -ltnp 'sport = :{port}') or set APP_PORT in .env"
    return Check("port", free, f"127.0.0.1:{port} {'free' if free else 'in use'}", fix)


def crlf_files(root: Path, globs: Iterable[str] = SCRIPT_GLOBS) -> list[str]:
    found = set()
    for pattern in globs:
        for path in root.glob(pattern):
            if path.is_file() and b"\r\n" in path.read_bytes():
                found.add(str(path.relative_to(root)))
    return sorted(found)


def crlf_check(files: list[str]) -> Check:
    if not files:
        return Check("line endings", True, "shell scripts use LF")
    fix = "convert them (sed -i 's/\\r$//' FILE) and keep .gitattributes' eol=lf"
    return Check("line endings", False, f"CRLF in {', '.join(files)}", fix)


def base_image_fix(settings: Settings) -> str:
    """What makes a missing Python base image appear without a registry: the offline images have one version."""
    from lifecycle.offline import suite_versions  # here, not at the top: offline imports this module's probes

    offline_python, _ = suite_versions(settings["DEBIAN_SUITE"])
    if settings["PY_VERSION"] != offline_python:
        return (
            f"without a registry only Python {offline_python} can be built (offline images): set "
            f"PY_VERSION={offline_python} in .env and run invoke images.offline, or reach a registry that has "
            f"{settings.base_image}"
        )
    return "run invoke images.offline (builds it from Debian packages) or scripts/bootstrap"


def images_check(present: dict[str, bool], registry_ok: bool, fix: str) -> Check:
    """fix: what to do when an image is missing and no registry answers (base_image_fix)."""
    missing = [image for image, here in present.items() if not here]
    if not missing:
        return Check("base images", True, f"present: {', '.join(present)}")
    if registry_ok:
        return Check("base images", True, f"{', '.join(missing)} will be pulled (registry reachable)")
    return Check("base images", False, f"missing and no registry: {', '.join(missing)}", fix)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # Without SO_REUSEADDR a TIME_WAIT left by the last request counts as "in use"; docker can bind it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def image_present(run: Runner, image: str) -> bool:
    return run(docker("image", "inspect", "--format", "{{.Id}}", image), warn=True, capture=True).ok


OWNER_LABEL = "io.lifecycle.compose-project"  # docker/compose.yaml labels each image with its compose project


def image_owner(run: Runner, image: str) -> str | None:
    """The compose project that built image ('' when it has no owner label), or None when there is no image."""
    result = run(docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{OWNER_LABEL}"}}}}', image),
                 warn=True, capture=True)  # fmt: skip
    if not result.ok:
        return None
    owner = result.stdout.strip()
    return "" if owner == "<no value>" else owner


def port_published_by(run: Runner, project: str, port: int) -> bool:
    """Whether a container of this compose project publishes the host port."""
    label = f"label=com.docker.compose.project={project}"
    result = run(docker("ps", "--quiet", "--filter", label, "--filter", f"publish={port}"), warn=True, capture=True)
    return bool(result.ok and result.stdout.strip())


def image_available(run: Runner, image: str) -> bool:
    """Present locally, or pulled now (False when no registry answers)."""
    return image_present(run, image) or run(docker("pull", "--quiet", image), warn=True).ok


def _output(run: Runner, argv: list[str]) -> str | None:
    result = run(argv, warn=True, capture=True)
    return result.stdout if result.ok else None


BUILDKIT_PROBE_IMAGE = "lifecycle-buildkit-probe"
BUILDKIT_PROBE = """FROM {image}
RUN --mount=type=cache,target=/var/cache/probe true
"""


def buildkit_check(settings: Settings, run: Runner, base_present: bool) -> Check:
    """Build a one-line image with a cache mount through compose: proves BuildKit is what builds."""
    if not base_present:
        return Check("buildkit", True, "skipped (base image not present yet)")
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "Dockerfile").write_text(BUILDKIT_PROBE.format(image=settings.base_image))
        Path(folder, "compose.yaml").write_text(
            f"services:\n  probe:\n    build: .\n    image: {BUILDKIT_PROBE_IMAGE}\n"
        )
        probe = compose(
            settings,
            "build",
            "--quiet",
            "probe",
            project=BUILDKIT_PROBE_IMAGE,
            file=f"{folder}/compose.yaml",
            docker_options=BUILD_LOG_LEVEL,
        )
        ok = run(probe, env=settings.env, warn=True, capture=True).ok
    run(docker("image", "rm", "--force", BUILDKIT_PROBE_IMAGE), warn=True, capture=True)
    return Check(
        "buildkit",
        ok,
        "cache mounts work through compose" if ok else "compose build with a cache mount failed",
        "update the Compose v2 plugin (scripts/bootstrap) and check the engine's log",
    )


def checks(settings: Settings, run: Runner) -> list[Check]:
    engine = engine_check(_output(run, docker("version", "--format", "{{.Server.Version}}")))
    result = [engine, compose_check(_output(run, docker("compose", "version", "--short")))]
    if engine.ok:
        images = [settings.base_image, settings["DB_IMAGE"]]
        present = {image: image_present(run, image) for image in images}
        registry_ok = all(present.values()) or run(docker("manifest", "inspect", images[0]), warn=True, capture=True).ok
        result += [
            images_check(present, registry_ok, base_image_fix(settings)),
            buildkit_check(settings, run, present[images[0]]),
        ]
        root_dir = (_output(run, docker("info", "--format", "{{.DockerRootDir}}")) or "/").strip()
        where = root_dir if Path(root_dir).exists() else "/"
        result.append(disk_check(shutil.disk_usage(where).free, where))
    port = int(settings["APP_PORT"])
    free = port_is_free(port)
    ours = not free and engine.ok and port_published_by(run, settings.project_name, port)
    result += [port_check(port, free, ours), crlf_check(crlf_files(settings.root))]
    return result


def report(settings: Settings, run: Runner) -> int:
    found = checks(settings, run)
    for check in found:
        print(check.line())
    return sum(not check.ok for check in found)


def preflight(run: Runner) -> None:
    """Before any compose call: a clear line instead of docker's own error when the basics are missing."""
    for check in (
        engine_check(_output(run, docker("version", "--format", "{{.Server.Version}}"))),
        compose_check(_output(run, docker("compose", "version", "--short"))),
    ):
        if not check.ok:
            raise UserError(f"{check.detail}; {check.fix}")
