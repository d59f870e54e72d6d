"""The local registry (`invoke registry.up` / `registry.down`) and how a registry's answers read to a user.

The local registry runs from `docker/registry.yaml` under a compose project of its own (`<project>-registry`),
published on 127.0.0.1:REGISTRY_PORT only, with its data on a named volume that `down` keeps. Its image is
REGISTRY_IMAGE (the official registry:2) when present or pullable, else the offline one from Debian's package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lifecycle import offline
from lifecycle.commands import compose
from lifecycle.context import wait_until
from lifecycle.errors import UserError
from lifecycle.probes import port_is_free, registry_answers
from lifecycle.runner import Runner
from lifecycle.settings import Settings

COMPOSE_FILE = "docker/registry.yaml"
SERVICE = "registry"
DATA_VOLUME = "registry-data"
ANSWER_DEADLINE_S = 30
DATA_DIR = "/var/lib/registry"  # the blobs live below it in docker/registry/v2/blobs, made by the first push


def project(settings: Settings) -> str:
    return f"{settings.project_name}-registry"


def compose_argv(settings: Settings, *args: str) -> list[str]:
    return compose.compose_argv(settings, *args, project=project(settings), file=COMPOSE_FILE)


def up_argv(settings: Settings) -> list[str]:
    return compose_argv(settings, "up", "--detach", "--no-build", SERVICE)


def down_argv(settings: Settings, *, volumes: bool = False) -> list[str]:
    return compose_argv(settings, "down", *["--volumes"] * volumes)


def volume_name(settings: Settings) -> str:
    return f"{project(settings)}_{DATA_VOLUME}"


def blob_sizes_argv(settings: Settings) -> list[str]:
    """Every blob the registry stores, as `SIZE PATH` lines (GNU and busybox find and stat both do this)."""
    return compose_argv(
        settings, "exec", "--no-TTY", SERVICE, "find", DATA_DIR, "-path", "*/v2/blobs/*", "-type", "f", "-name", "data",
        "-exec", "stat", "-c", "%s %n", "{}", "+",
    )  # fmt: skip


def parse_blob_sizes(output: str) -> dict[str, int]:
    """`SIZE .../blobs/sha256/ab/<hex>/data` lines -> {"sha256:<hex>": SIZE}."""
    sizes = {}
    for line in output.splitlines():
        size, _, path = line.strip().partition(" ")
        parts = path.split("/")
        if size.isdigit() and len(parts) >= 4 and parts[-1] == "data":
            sizes[f"{parts[-4]}:{parts[-2]}"] = int(size)
    return sizes


def is_local(settings: Settings) -> bool:
    return not settings["REGISTRY"]


def wait_until_answering(
    address: str, container: str, deadline_s: float = ANSWER_DEADLINE_S, probe: Callable[[str], bool] = registry_answers
) -> None:
    message = f"the local registry did not answer on {address} within {deadline_s:.0f}s; see docker logs {container}"
    wait_until(lambda: probe(address), deadline_s, 0.5, message)


def service_image(settings: Settings, run: Runner) -> str:
    """REGISTRY_IMAGE when present or pullable, else the offline image (built when missing)."""
    return offline.available_or_offline(settings, run, "registry", settings["REGISTRY_IMAGE"])


@dataclass(frozen=True)
class BlobDelta:
    """What a push added to the registry's storage: new blobs and their bytes."""

    blobs: int
    bytes: int


def blob_delta(before: dict[str, int], after: dict[str, int]) -> BlobDelta:
    new = {digest: size for digest, size in after.items() if digest not in before}
    return BlobDelta(len(new), sum(new.values()))


def start(settings: Settings, run: Runner, *, dry: bool = False) -> str:
    """Run the local registry (kept running across reboots of the engine) and wait until it answers."""
    if not is_local(settings):
        raise UserError(
            f"REGISTRY={settings['REGISTRY']} is set, so releases go there; registry.up runs only the local "
            "registry (leave REGISTRY empty to use it)"
        )
    image = service_image(settings, run)
    env = {**settings.env, "REGISTRY_IMAGE": image}
    running = run(compose_argv(settings, "ps", "--quiet", SERVICE), env=env, warn=True, capture=True).stdout.strip()
    if not running and not dry and not port_is_free(settings.typed("REGISTRY_PORT")):
        raise UserError(
            f"127.0.0.1:{settings['REGISTRY_PORT']} (REGISTRY_PORT) is already in use; stop what listens there "
            "or set REGISTRY_PORT in .env"
        )
    run(up_argv(settings), env=env)
    if not dry:
        wait_until_answering(settings.registry, f"{project(settings)}-{SERVICE}-1")
    return settings.registry
