"""Facts about the machine and the checkout, each gathered by one small probe that changes nothing
(the BuildKit probe removes the throwaway image it builds).

The questions more than one part asks (engine and compose versions, images, ports, a compose project's
containers, volumes, registries, the HTTPS health check): doctor reports these facts, the sequencers, the bootstrap
and the benchmark act on them; a question only one sequencer asks stays beside it. Each probe asks through a builder
of lifecycle/commands and the `Runner` (so it is printed, and a `RecordingRunner` answers it in tests), and never
raises for a "no": a failing command is an answer.
Standard library only: the bootstrap uses them before any virtual environment exists.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.commands import docker
from lifecycle.commands.compose import BUILD_LOG_LEVEL, compose_argv
from lifecycle.runner import Runner
from lifecycle.settings import Settings

# `docker info` hangs, rather than fails, on a wedged daemon: the bootstrap must not wait forever.
ENGINE_PROBE_TIMEOUT_S = 20
SCRIPT_GLOBS = ("bash_files/*", "scripts/*", ".ci/*", "docker/**/*.sh")  # where shell scripts live
BUILDKIT_PROBE_IMAGE = "lifecycle-buildkit-probe"
BUILDKIT_PROBE = """FROM {image}
RUN --mount=type=cache,target=/var/cache/probe true
"""


def output(run: Runner, argv: list[str]) -> str | None:
    """The command's stdout, or None when it failed."""
    result = run(argv, warn=True, capture=True)
    return result.stdout if result.ok else None


def engine_version(run: Runner) -> str | None:
    """The Docker Engine's version, or None when the engine does not answer."""
    return output(run, docker.version_argv())


def compose_version(run: Runner) -> str | None:
    """`docker compose version --short` (None when there is no Compose v2 plugin)."""
    return output(run, docker.compose_version_argv())


COMPOSE_PLUGIN_DIRS = (
    "~/.docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


LOCAL_ENGINE = "unix:///var/run/docker.sock"


def engine_is_local(environ: Mapping[str, str]) -> bool:
    """Does docker talk to this machine's own engine (whose published ports are on this host's 127.0.0.1)?
    Not with DOCKER_HOST at another engine, e.g. a cluster node in its own network namespace."""
    return (environ.get("DOCKER_HOST") or LOCAL_ENGINE) == LOCAL_ENGINE and not environ.get("DOCKER_CONTEXT")


def engine_fingerprint(environ: Mapping[str, str]) -> str | None:
    """What would change the engine's and compose's answers: the docker CLI, the compose plugins and the
    engine's socket (made anew each time the daemon starts). None for an engine behind TCP or SSH, whose
    answers nothing on this machine tells apart."""
    host = environ.get("DOCKER_HOST") or LOCAL_ENGINE
    if not host.startswith("unix://") or environ.get("DOCKER_CONTEXT"):
        return None
    config = environ.get("DOCKER_CONFIG")
    folders = ([f"{config}/cli-plugins"] if config else []) + list(COMPOSE_PLUGIN_DIRS)
    paths = [shutil.which("docker") or "docker", host.removeprefix("unix://")]
    paths += [str(Path(folder).expanduser() / "docker-compose") for folder in folders]
    facts = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            facts.append(f"{path}:absent")
            continue
        facts.append(f"{path}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_ctime_ns}")
    return "|".join(facts)


def engine_and_compose_versions(
    run: Runner, cache: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """(engine version, compose version), from `cache` while the engine fingerprint is unchanged.

    Only two answers are remembered, and only good ones: a missing engine or plugin is asked again every time.
    """
    fingerprint = engine_fingerprint(os.environ if environ is None else environ)
    if cache and fingerprint:
        try:
            known = json.loads(cache.read_text(encoding="utf-8"))
            if known.get("fingerprint") == fingerprint:
                return known["engine"], known["compose"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # no cache yet, or an unreadable one: ask
    engine, compose = engine_version(run), compose_version(run)
    if cache and fingerprint and engine and compose:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"fingerprint": fingerprint, "engine": engine, "compose": compose}))
    return engine, compose


def engine_answers(run: Runner) -> bool:
    """`docker info` works, within ENGINE_PROBE_TIMEOUT_S."""
    return run(docker.info_argv(), warn=True, capture=True, timeout=ENGINE_PROBE_TIMEOUT_S).ok


def docker_root_dir(run: Runner) -> str | None:
    found = output(run, docker.info_argv("{{.DockerRootDir}}"))
    return found.strip() if found else None


def engine_disk_space(run: Runner) -> tuple[str, int]:
    """(folder, free bytes) where the engine keeps images: its root dir when visible here, else /."""
    root_dir = docker_root_dir(run) or "/"
    where = root_dir if Path(root_dir).exists() else "/"
    return where, shutil.disk_usage(where).free


def image_id(run: Runner, image: str) -> str | None:
    """The local image's id, or None when it is not present."""
    found = output(run, docker.image_ids_argv([image]))
    return None if found is None else found.strip()


def label_value(text: str) -> str | None:
    """A label's value as the template printed it; None when there was no such label."""
    value = text.strip()
    return value if value and value != "<no value>" else None


def image_label(run: Runner, image: str, label: str) -> str | None:
    """The value of one label of a local image; None when the image is not present or has no such label."""
    return label_value(output(run, docker.image_label_argv(image, label)) or "")


def ids_and_label(run: Runner, images: Sequence[str], label: str) -> list[tuple[str, str | None]] | None:
    """Each image's (id, value of one label) from a single `docker image inspect`, in order; None when any of
    them is not present (inspect leaves it out, so the lines could no longer be told apart)."""
    found = output(run, docker.image_ids_argv(images, label))
    lines = (found or "").splitlines()
    if len(lines) != len(images):
        return None
    pairs = [line.partition(" ") for line in lines]
    return [(image_id, label_value(value)) for image_id, _, value in pairs]


def image_present(run: Runner, image: str) -> bool:
    return image_id(run, image) is not None


def local_tags(run: Runner, repository: str) -> list[str]:
    """Every local `repository:tag` of one repository (e.g. the release tags `invoke release` made)."""
    found = output(run, docker.image_tags_argv(repository)) or ""
    return sorted(line for line in found.split() if line.startswith(f"{repository}:"))


def superseded_builds(run: Runner, project: str) -> list[str]:
    """Ids of the untagged images this compose project built: earlier builds whose tags a later build took."""
    return sorted(set((output(run, docker.superseded_builds_argv(project)) or "").split()))


def image_in_registry(run: Runner, image: str) -> bool:
    """A registry answers for the image (without pulling it)."""
    return run(docker.manifest_inspect_argv(image), warn=True, capture=True).ok


def image_owner(run: Runner, image: str) -> str | None:
    """The compose project that built image ('' when it has no owner label), or None when there is no image."""
    found = output(run, docker.image_label_argv(image, docker.OWNER_LABEL))
    if found is None:
        return None
    return "" if found.strip() == "<no value>" else found.strip()


def volume_exists(run: Runner, name: str) -> bool:
    return output(run, docker.volume_inspect_argv(name)) is not None


@dataclass(frozen=True)
class ServiceContainer:
    """A compose service's container as `docker ps` lists it."""

    id: str
    image: str  # the image as the service names it (DB_IMAGE, PROJ_NAME:STAGE, ...)
    running: bool


def service_container(run: Runner, project: str, service: str) -> ServiceContainer | None:
    """The service's container in this compose project (running or not; never a one-off `compose run`), or
    None when it has none. `docker ps` answers in a fraction of `docker compose ps`'s time."""
    lines = (output(run, docker.service_container_argv(project, service)) or "").split("\n")
    fields = lines[0].split()
    if len(fields) != 3:
        return None
    return ServiceContainer(fields[0], fields[1], fields[2] == "running")


def port_published_by(run: Runner, project: str, port: int) -> bool:
    """Whether a container of this compose project publishes the host port."""
    listed = output(run, docker.publishing_argv(project, port))
    return bool(listed and listed.strip())


def image_available(run: Runner, image: str) -> bool:
    """Present locally, or pulled now (False when no registry answers)."""
    return image_present(run, image) or run(docker.pull_argv(image), warn=True).ok


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # Without SO_REUSEADDR a TIME_WAIT left by the last request counts as "in use"; docker can bind it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


HEALTHCHECK_USER_AGENT = "lifecycle-healthcheck"  # docker/gunicorn.conf.py keeps these out of the access log


def https_health_answers(port: int, timeout: float = 3, path: str = "/health") -> bool:
    """Does https://127.0.0.1:PORT/HEALTH_PATH answer 200? Availability only: the certificate is not checked here."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    probe = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"User-Agent": HEALTHCHECK_USER_AGENT})
    try:
        with urllib.request.urlopen(probe, timeout=timeout, context=context) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def buildkit_cache_mounts_work(settings: Settings, run: Runner) -> bool:
    """Build a one-line image with a cache mount through compose (then remove it): BuildKit is what builds."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "Dockerfile").write_text(BUILDKIT_PROBE.format(image=settings.base_image))
        Path(folder, "compose.yaml").write_text(
            f"services:\n  probe:\n    build: .\n    image: {BUILDKIT_PROBE_IMAGE}\n"
        )
        probe = compose_argv(
            settings,
            "build",
            "--quiet",
            "probe",
            project=BUILDKIT_PROBE_IMAGE,
            file=f"{folder}/compose.yaml",
            docker_options=BUILD_LOG_LEVEL,
        )
        works = run(probe, env=settings.env, warn=True, capture=True).ok
    run(docker.image_rm_argv(BUILDKIT_PROBE_IMAGE, force=True), warn=True, capture=True)
    return works


def crlf_files(root: Path, globs: Iterable[str] = SCRIPT_GLOBS) -> list[str]:
    """The shell scripts in the checkout with Windows line endings (bash fails on them with $'\\r')."""
    found = set()
    for pattern in globs:
        for path in root.glob(pattern):
            if path.is_file() and b"\r\n" in path.read_bytes():
                found.add(str(path.relative_to(root)))
    return sorted(found)


# ------------------------------------------------------------------------------------------- registries
REGISTRY_CONNECT_TIMEOUT_S = 5


def registry_host_port(address: str) -> tuple[str, int]:
    """REGISTRY's host and port (443 when it names none)."""
    host = address.split("/", 1)[0]
    name, _, port = host.partition(":")
    return name, int(port) if port else 443


def registry_reachable(address: str) -> bool:
    """Something accepts a connection at the registry's host and port (any registry: HTTPS or plain)."""
    try:
        with socket.create_connection(registry_host_port(address), timeout=REGISTRY_CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def registry_answers(address: str, timeout: float = 3) -> bool:
    """A registry's API root answers at http://ADDRESS/v2/ (200, or 401 behind authentication); asked directly,
    never through an HTTP proxy (the registries asked here are on this machine's loopback)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(f"http://{address}/v2/", timeout=timeout):
            return True
    except urllib.error.HTTPError as error:
        return error.code == 401
    except (OSError, ValueError):
        return False
