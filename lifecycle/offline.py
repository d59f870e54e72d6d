"""Base images made from Debian packages alone, for machines that reach no container registry.

Five images, each made only when missing (or all of them with `force`); an image on the rootfs that was built
from other inputs than the checkout's (its `lifecycle.buildkey` label differs: a changed Dockerfile or script, a
new rootfs) counts as missing, so an update of the suite never keeps a stale one:

1. rootfs    `<OFFLINE_PREFIX>/debian:<suite>`: debootstrap minbase, tarred and `docker import`ed;
2. python    `<OFFLINE_PREFIX>/python:<pyver>-<suite>`: Debian's python3 + venv, no compiler;
3. db        `<OFFLINE_PREFIX>/mariadb:<version>`: Debian's MariaDB behind the official mysql image's interface,
              with mariadb-backup for physical backups;
4. registry  `<OFFLINE_PREFIX>/registry:<version>`: Debian's docker-registry behind the official registry:2's;
5. proxy     `<OFFLINE_PREFIX>/haproxy:<version>`: Debian's HAProxy behind the official haproxy image's.

and one tool image, made only when a task needs it (never by `images.offline` alone):

6. skopeo    `<OFFLINE_PREFIX>/skopeo:<version>`: Debian's skopeo, which signs releases and verifies them
   (lifecycle/signing.py).

`write_switch` then writes `.lifecycle/images.env`, which points BASE_IMAGE/PY_VERSION/PY_BASE/DB_IMAGE and
REGISTRY_IMAGE/PROXY_IMAGE at them; deleting that file returns to the official images. Standard library only:
this runs before any venv exists.
Run standalone as `python3 -m lifecycle.offline [--force]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from lifecycle import buildkey
from lifecycle.commands.compose import BUILD_LOG_LEVEL, compose_argv
from lifecycle.commands.docker import docker_argv
from lifecycle.errors import UserError, exit_status
from lifecycle.probes import image_available, image_id, image_label, image_present
from lifecycle.runner import Runner, SubprocessRunner
from lifecycle.settings import IMAGES_ENV, Settings, load_settings
from lifecycle.settings_table import DEFAULTS


class SuiteVersions(NamedTuple):
    """What a Debian suite's packages install: the offline images' tags carry these versions."""

    python: str
    mariadb: str
    registry: str
    haproxy: str
    skopeo: str


SUITES = {
    "trixie": SuiteVersions(python="3.13", mariadb="11.8", registry="2.8", haproxy="3.0", skopeo="1.18"),
    "bookworm": SuiteVersions(python="3.11", mariadb="10.11", registry="2.8", haproxy="2.6", skopeo="1.9"),
}
IMAGES = ("python", "db", "registry", "proxy")  # the images built on the rootfs, in build order
TOOLS = ("skopeo",)  # built on the rootfs too, but only when a task asks for them (wanted=...)
STEPS = ("rootfs", *IMAGES)
COMPOSE_FILE = Path("docker") / "offline" / "compose.yaml"
_OFFLINE = Path("docker") / "offline"
# What each image's build reads (docker/offline/compose.yaml's build sections; a unit test compares them).
BUILD_INPUTS = {
    "python": buildkey.BuildInputs(_OFFLINE, _OFFLINE / "python.Dockerfile", (COMPOSE_FILE,)),
    "db": buildkey.BuildInputs(Path("."), _OFFLINE / "mariadb.Dockerfile", (COMPOSE_FILE, Path(".dockerignore"))),
    "registry": buildkey.BuildInputs(_OFFLINE, _OFFLINE / "registry.Dockerfile", (COMPOSE_FILE,)),
    "proxy": buildkey.BuildInputs(_OFFLINE, _OFFLINE / "haproxy.Dockerfile", (COMPOSE_FILE,)),
    "skopeo": buildkey.BuildInputs(_OFFLINE, _OFFLINE / "skopeo.Dockerfile", (COMPOSE_FILE,)),
    "restic": buildkey.BuildInputs(_OFFLINE, _OFFLINE / "restic.Dockerfile", (COMPOSE_FILE,)),  # lifecycle/remote.py
}
# Debian's archive signing keys (package debian-archive-keyring): debootstrap refuses an unsigned or forged mirror.
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# debootstrap needs a real disk (not a tmpfs /tmp) with room for the ~200 MB tree and its tar.
WORK_DIR = Path("/var/tmp")
SWITCH_KEYS = ("BASE_IMAGE", "PY_VERSION", "PY_BASE", "DB_IMAGE", "REGISTRY_IMAGE", "PROXY_IMAGE")


@dataclass(frozen=True)
class OfflineTags:
    rootfs: str
    python: str
    db: str
    registry: str
    proxy: str
    skopeo: str

    def of(self, step: str) -> str:
        return getattr(self, step)


def suite_versions(suite: str) -> SuiteVersions:
    if suite not in SUITES:
        raise UserError(f"DEBIAN_SUITE={suite!r} is not supported; set it to one of: {', '.join(sorted(SUITES))}")
    return SUITES[suite]


def offline_tags(settings: Settings) -> OfflineTags:
    suite, prefix = settings["DEBIAN_SUITE"], settings["OFFLINE_PREFIX"]
    versions = suite_versions(suite)
    return OfflineTags(
        rootfs=f"{prefix}/debian:{suite}",
        python=f"{prefix}/python:{versions.python}-{suite}",
        db=f"{prefix}/mariadb:{versions.mariadb}",
        registry=f"{prefix}/registry:{versions.registry}",
        proxy=f"{prefix}/haproxy:{versions.haproxy}",
        skopeo=f"{prefix}/skopeo:{versions.skopeo}",
    )


def switch_values(settings: Settings) -> dict[str, str]:
    """The settings that make the main stack use the offline images."""
    suite, prefix = settings["DEBIAN_SUITE"], settings["OFFLINE_PREFIX"]
    tags = offline_tags(settings)
    return {
        "BASE_IMAGE": f"{prefix}/python",
        "PY_VERSION": suite_versions(suite).python,
        "PY_BASE": suite,
        "DB_IMAGE": tags.db,
        "REGISTRY_IMAGE": tags.registry,
        "PROXY_IMAGE": tags.proxy,
    }


def plan(tags: OfflineTags, existing: Collection[str], force: bool, wanted: Sequence[str] = IMAGES) -> list[str]:
    """Which of STEPS to make, in order: the wanted images that are missing (all of them with force), plus the
    rootfs when an image built on it must be made and it is missing (or forced)."""
    if force:
        return ["rootfs", *[step for step in (*IMAGES, *TOOLS) if step in wanted]]
    images = [step for step in (*IMAGES, *TOOLS) if step in wanted and tags.of(step) not in existing]
    if images and tags.rootfs not in existing:
        return ["rootfs", *images]
    return images


def debootstrap_argv(suite: str, mirror: str, target: Path | str, keyring: Path | str | None = None) -> list[str]:
    """Every Release file checked against the Debian archive keyring, whatever the mirror's scheme (HTTP)."""
    keyring = keyring or DEBIAN_KEYRING
    return ["debootstrap", "--variant=minbase", "--force-check-gpg", f"--keyring={keyring}", suite, str(target), mirror]


def tar_argv(source_dir: Path | str, tarfile: Path | str) -> list[str]:
    return ["tar", "-C", str(source_dir), "-c", "-f", str(tarfile), "."]


def import_argv(tarfile: Path | str, tag: str) -> list[str]:
    return docker_argv("import", str(tarfile), tag)


def compose_project(settings: Settings) -> str:
    return f"{settings['OFFLINE_PREFIX']}-offline-images".replace("/", "-").lower()


def build_images_argv(settings: Settings, services: Sequence[str]) -> list[str]:
    return compose_argv(
        settings,
        "build",
        *services,
        project=compose_project(settings),
        file=str(COMPOSE_FILE),
        docker_options=BUILD_LOG_LEVEL,
    )


def build_images_env(settings: Settings) -> dict[str, str]:
    """settings.env plus what docker/offline/compose.yaml interpolates (OFFLINE_* so DB_IMAGE keeps its meaning)."""
    tags = offline_tags(settings)
    return {
        **settings.env,
        "OFFLINE_SUITE": settings["DEBIAN_SUITE"],
        "OFFLINE_ROOTFS_IMAGE": tags.rootfs,
        "OFFLINE_PYTHON_IMAGE": tags.python,
        "OFFLINE_DB_IMAGE": tags.db,
        "OFFLINE_REGISTRY_IMAGE": tags.registry,
        "OFFLINE_PROXY_IMAGE": tags.proxy,
        "OFFLINE_SKOPEO_IMAGE": tags.skopeo,
    }


def build_keys(settings: Settings, rootfs_id: str) -> dict[str, str]:
    """Each image's build key: its Dockerfile, the files it copies, the compose file, and the rootfs it is built on."""
    env = build_images_env(settings)
    return {
        step: buildkey.build_key(settings.root, step, env, rootfs_id, inputs=inputs)
        for step, inputs in BUILD_INPUTS.items()
    }


def existing_images(
    run: Runner, tags: OfflineTags, keys: Mapping[str, str] | None, wanted: Sequence[str] = IMAGES
) -> set[str]:
    """The tags present; with `keys` (known once the rootfs is), each image on the rootfs only when built from these
    inputs (its build-key label is keys[step])."""
    present = [step for step in ("rootfs", *wanted) if image_present(run, tags.of(step))]
    current = [
        step
        for step in present
        if keys is None or step == "rootfs" or image_label(run, tags.of(step), buildkey.LABEL) == keys[step]
    ]
    return {tags.of(step) for step in current}


def check_rootfs_prerequisites() -> None:
    if shutil.which("debootstrap") is None:
        raise UserError(
            "debootstrap is not installed; install it (apt-get install debootstrap) to make the Debian rootfs"
        )
    if os.geteuid() != 0:
        raise UserError(
            "making the Debian rootfs needs root (debootstrap); run as root, e.g. sudo python3 -m lifecycle.offline"
        )
    if not DEBIAN_KEYRING.is_file():
        raise UserError(
            f"no Debian archive keyring at {DEBIAN_KEYRING} to check the mirror's signatures; "
            "install it (apt-get install debian-archive-keyring)"
        )


def copy_extra_cas(settings: Settings, rootfs_dir: Path) -> None:
    """Put EXTRA_CA_DIR/*.crt where update-ca-certificates (run when ca-certificates installs) picks them up."""
    certificates = settings.extra_ca_certs()
    if not certificates:
        return
    destination = rootfs_dir / "usr" / "local" / "share" / "ca-certificates"
    destination.mkdir(parents=True, exist_ok=True)
    for certificate in certificates:
        shutil.copyfile(certificate, destination / certificate.name)


# What debootstrap leaves behind that no image needs: the downloaded .debs and package lists (~90 MB).
ROOTFS_LEFTOVERS = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*")


def trim_rootfs(rootfs_dir: Path) -> None:
    for pattern in ROOTFS_LEFTOVERS:
        for leftover in rootfs_dir.glob(pattern):
            leftover.unlink()


def mounts_under(directory: Path, mounts_file: Path = Path("/proc/self/mounts")) -> list[str]:
    """Mount points inside directory, deepest first (debootstrap mounts /proc and /sys in its target)."""
    prefix = f"{directory.resolve()}/"
    points = [line.split()[1] for line in mounts_file.read_text().splitlines() if len(line.split()) > 1]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def remove_work_dir(work_dir: Path, run: Runner) -> None:
    # Never delete through a mount left by an interrupted debootstrap: that would reach into the host's /proc or /dev.
    for mount_point in mounts_under(work_dir):
        run(["umount", mount_point], warn=True)
    if mounts_under(work_dir):
        raise UserError(f"{work_dir} still has mounts inside; unmount them, then remove that folder by hand")
    shutil.rmtree(work_dir, ignore_errors=True)


def make_rootfs(settings: Settings, run: Runner, tag: str) -> None:
    work_dir = Path(tempfile.mkdtemp(prefix="lifecycle-rootfs-", dir=WORK_DIR))
    try:
        rootfs_dir, tarfile = work_dir / "rootfs", work_dir / "rootfs.tar"
        run(debootstrap_argv(settings["DEBIAN_SUITE"], settings["DEBIAN_MIRROR"], rootfs_dir))
        trim_rootfs(rootfs_dir)
        copy_extra_cas(settings, rootfs_dir)
        run(tar_argv(rootfs_dir, tarfile))
        run(import_argv(tarfile, tag))
    finally:
        remove_work_dir(work_dir, run)


def ensure_offline_images(
    settings: Settings, run: Runner, force: bool = False, wanted: Sequence[str] = IMAGES
) -> list[str]:
    """Make the wanted offline images that are missing (all of them with force); return the tags made, [] when all
    existed."""
    tags = offline_tags(settings)
    rootfs_id = image_id(run, tags.rootfs)
    keys = build_keys(settings, rootfs_id) if rootfs_id else None  # without the rootfs, present is all we can tell
    steps = plan(tags, set() if force else existing_images(run, tags, keys, wanted), force, wanted)
    if "rootfs" in steps:
        check_rootfs_prerequisites()
        make_rootfs(settings, run, tags.rootfs)
        keys = build_keys(settings, image_id(run, tags.rootfs) or "")
    services = [step for step in steps if step != "rootfs"]
    if services:
        labels = {f"OFFLINE_{step.upper()}_KEY": keys[step] for step in services}
        run(build_images_argv(settings, services), env={**build_images_env(settings), **labels})
    return [tags.of(step) for step in steps]


def available_or_offline(settings: Settings, run: Runner, step: str, configured: str) -> str:
    """The configured image of a service (registry, proxy) when present or pullable; else its offline image, made
    when missing (cached)."""
    if image_available(run, configured):
        return configured
    ensure_offline_images(settings, run, wanted=(step,))
    return offline_tags(settings).of(step)


def render_switch(values: Mapping[str, str]) -> str:
    header = (
        "# Written by `python3 -m lifecycle.offline` (invoke images.offline): use the offline base images built here.\n"
        f"# Delete this file to return to the official images ({DEFAULTS['BASE_IMAGE']}:{DEFAULTS['PY_VERSION']}-"
        f"{DEFAULTS['PY_BASE']}, {DEFAULTS['DB_IMAGE']}, {DEFAULTS['REGISTRY_IMAGE']}, {DEFAULTS['PROXY_IMAGE']}).\n"
    )
    return header + "".join(f"{key}={values[key]}\n" for key in SWITCH_KEYS)


def write_switch(settings: Settings) -> bool:
    """Write .lifecycle/images.env; False (file untouched) when it already says the same."""
    path = settings.root / IMAGES_ENV
    content = render_switch(switch_values(settings))
    if path.is_file() and path.read_text(encoding="utf-8") == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(content, encoding="utf-8")
    partial.replace(path)  # readers never see half a file
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lifecycle.offline", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild all offline images even if they exist")
    args = parser.parse_args(argv)

    def make_and_switch() -> None:
        settings = load_settings()
        made = ensure_offline_images(settings, SubprocessRunner(), force=args.force)
        write_switch(settings)
        tags = offline_tags(settings)
        if made:
            print(f"offline images made: {', '.join(made)}")
        else:
            print(f"offline images present: {', '.join(tags.of(step) for step in STEPS)}")
        print(f"{IMAGES_ENV} points the stack at them; delete it to return to the official images")

    return exit_status(make_and_switch)


if __name__ == "__main__":
    sys.exit(main())


def base_image_fix(settings: Settings) -> str:
    """What makes a missing Python base image appear without a registry: the offline images have one version."""
    offline_python = suite_versions(settings["DEBIAN_SUITE"]).python
    if settings["PY_VERSION"] != offline_python:
        return (
            f"without a registry only Python {offline_python} can be built (offline images): set "
            f"PY_VERSION={offline_python} in .env and run invoke images.offline, or reach a registry that has "
            f"{settings.base_image}"
        )
    return "run invoke images.offline (builds it from Debian packages) or scripts/bootstrap"
