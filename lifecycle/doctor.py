"""`invoke doctor` and the preflight every Docker-touching task runs: reports, not probes.

Each check takes one fact from `lifecycle.probes` and hands it to a plain function that decides; a
failing check carries the fix, so the user reads one line and knows what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UserError
from lifecycle.lazy import lazy_module
from lifecycle.probes import (
    buildkit_cache_mounts_work,
    compose_version,
    crlf_files,
    engine_and_compose_versions,
    engine_disk_space,
    engine_version,
    image_in_registry,
    image_present,
    port_is_free,
    port_published_by,
)
from lifecycle.runner import Runner
from lifecycle.settings import Settings

# Only `invoke doctor`'s full check needs these; the preflight every task runs does not.
offline = lazy_module("lifecycle.offline")
registry = lazy_module("lifecycle.registry")

MIN_FREE_GIB = 5
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


# The host ports the suite publishes on 127.0.0.1, each with what publishes it.
PORTS = (
    ("APP_PORT", "the site (invoke up)"),
    ("HTTPS_PORT", "the TLS proxy in front of prod"),
    ("DEBUG_PORT", "debugpy (invoke up --stage dev --debug)"),
    ("REGISTRY_PORT", "the local registry (invoke registry.up)"),
)


def port_check(port: int, free: bool, ours: bool = False, name: str = "APP_PORT") -> Check:
    """ours: the port is published by this checkout's own stack (invoke up, registry.up), which is no problem."""
    if ours:
        return Check(name, True, f"127.0.0.1:{port} in use by this checkout's stack")
    fix = f"stop what listens on {port} (ss -ltnp 'sport = :{port}') or set {name} in .env"
    return Check(name, free, f"127.0.0.1:{port} {'free' if free else 'in use'}", fix)


def ports_in_use(settings: Settings) -> dict[str, int]:
    """The settings of PORTS this checkout publishes: REGISTRY_PORT only while releases go to the local registry."""
    names = [name for name, _ in PORTS if name != "REGISTRY_PORT" or not settings["REGISTRY"]]
    return {name: settings.typed(name) for name in names}


def distinct_ports_check(ports: dict[str, int]) -> Check | None:
    """Two settings naming one port: whichever starts second fails with docker's 'port is already allocated'."""
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            detail = f"{seen[port]} and {name} are both {port}"
            return Check("ports", False, detail, f"give each its own port in .env ({name}, say)")
        seen[port] = name
    return None


def crlf_check(files: list[str]) -> Check:
    if not files:
        return Check("line endings", True, "shell scripts use LF")
    fix = "convert them (sed -i 's/\\r$//' FILE) and keep .gitattributes' eol=lf"
    return Check("line endings", False, f"CRLF in {', '.join(files)}", fix)


def images_check(present: dict[str, bool], registry_ok: bool, fix: str) -> Check:
    """fix: what to do when an image is missing and no registry answers (base_image_fix)."""
    missing = [image for image, here in present.items() if not here]
    if not missing:
        return Check("base images", True, f"present: {', '.join(present)}")
    if registry_ok:
        return Check("base images", True, f"{', '.join(missing)} will be pulled (registry reachable)")
    return Check("base images", False, f"missing and no registry: {', '.join(missing)}", fix)


def buildkit_check(works: bool | None) -> Check:
    """Whether compose builds with BuildKit's cache mounts (None: not probed, the base image is missing)."""
    if works is None:
        return Check("buildkit", True, "skipped (base image not present yet)")
    return Check(
        "buildkit",
        works,
        "cache mounts work through compose" if works else "compose build with a cache mount failed",
        "update the Compose v2 plugin (scripts/bootstrap) and check the engine's log",
    )


def checks(settings: Settings, run: Runner) -> list[Check]:
    engine = engine_check(engine_version(run))
    result = [engine, compose_check(compose_version(run))]
    if engine.ok:
        images = [settings.base_image, settings["DB_IMAGE"]]
        present = {image: image_present(run, image) for image in images}
        registry_ok = all(present.values()) or image_in_registry(run, images[0])
        buildkit = buildkit_cache_mounts_work(settings, run) if present[images[0]] else None
        result += [images_check(present, registry_ok, offline.base_image_fix(settings)), buildkit_check(buildkit)]
        where, free = engine_disk_space(run)
        result.append(disk_check(free, where))
    ports = ports_in_use(settings)
    clash = distinct_ports_check(ports)
    if clash:
        result.append(clash)
    for name, port in ports.items():
        free = port_is_free(port)
        project = registry.project(settings) if name == "REGISTRY_PORT" else settings.project_name
        ours = not free and engine.ok and port_published_by(run, project, port)
        result.append(port_check(port, free, ours, name))
    result.append(crlf_check(crlf_files(settings.root)))
    return result


def report(settings: Settings, run: Runner) -> int:
    found = checks(settings, run)
    for check in found:
        print(check.line())
    return sum(not check.ok for check in found)


def preflight(run: Runner, cache: Path | None = None) -> None:
    """Before any compose call: a clear line instead of docker's own error when the basics are missing.

    With `cache` (a file), the answers are remembered until the docker CLI, the compose plugin or the
    engine's socket change (probes.engine_fingerprint), so an everyday task starts no probe process."""
    engine, compose = engine_and_compose_versions(run, cache)
    for check in (engine_check(engine), compose_check(compose)):
        if not check.ok:
            raise UserError(f"{check.detail}; {check.fix}")
