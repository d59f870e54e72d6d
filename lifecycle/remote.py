"""Backups off the machine, encrypted: restic (Debian's, in the offline restic image) to BACKUP_REMOTE, an SFTP
server or an S3-compatible endpoint.

restic encrypts and authenticates every byte with the repository password (BACKUP_REMOTE_PASSWORD_FILE) and
deduplicates. The target's secrets are files mounted read-only into the container, never on a command line or
printed: for SFTP the SSH key (BACKUP_REMOTE_SSH_KEY_FILE) and the server's host key (BACKUP_REMOTE_KNOWN_HOSTS_FILE:
no first-use trust); for S3 an AWS shared-credentials file (BACKUP_REMOTE_S3_CREDENTIALS_FILE). Each backup is one
snapshot tagged with the project and the backup's name, so a backup of another project is refused by name. restic
retries a backend for up to 15 minutes; the first contact with the target (BACKUP_REMOTE_TIMEOUT) is bounded, so a
wrong key or an unreachable endpoint is one line in seconds. Builders (lifecycle.commands.restic) return argv;
`Remote` sequences them; every failure is one line, and a local backup is never touched by one.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from lifecycle import offline, private
from lifecycle.backup import Database
from lifecycle.backup_file import SUFFIXES, manifest_path, verify
from lifecycle.commands import docker
from lifecycle.commands.restic import IMAGE, MOUNT, restic
from lifecycle.errors import UserError
from lifecycle.settings import Settings

_SFTP = re.compile(r"sftp:(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<path>/[^\s]*)")
_SFTP_URL = re.compile(
    r"sftp://(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?/(?P<path>/\S*)"
)
_S3 = re.compile(
    r"s3:(?P<scheme>https?://)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?"
    r"/(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*))?/?"
)
# restic init's words when the repository is there already (SFTP: config file; S3: master key and config): no
# exit status of its own. `cat config` cannot tell instead: on S3 restic retries a missing bucket for 15 minutes.
_MADE_ALREADY = re.compile(r"config file already exists|already initialized")
TIMED_OUT = 124  # coreutils timeout's, when the first contact outlasts BACKUP_REMOTE_TIMEOUT
PASSWORD = "BACKUP_REMOTE_PASSWORD_FILE"


@dataclass(frozen=True)
class Target:
    """An SFTP target."""

    user: str
    host: str
    port: int
    path: str
    secrets = ("BACKUP_REMOTE_SSH_KEY_FILE", "BACKUP_REMOTE_KNOWN_HOSTS_FILE")

    def optional_files(self, settings: Settings) -> tuple[str, ...]:
        return ()

    @property
    def repository(self) -> str:
        return f"sftp:{self.user}@{self.host}:{self.path}"

    def label(self) -> str:
        return f"sftp:{self.user}@{self.host}{f':{self.port}' if self.port != 22 else ''}:{self.path}"


@dataclass(frozen=True)
class S3Target:
    """An S3-compatible endpoint (restic's s3 backend): a bucket, and a prefix in it."""

    endpoint: str  # scheme://host[:port]
    bucket: str
    prefix: str = ""
    secrets = ("BACKUP_REMOTE_S3_CREDENTIALS_FILE",)

    def optional_files(self, settings: Settings) -> tuple[str, ...]:
        """The CA that signed an https endpoint's certificate, when set (else Debian's CAs)."""
        return ("BACKUP_REMOTE_CA_FILE",) if settings["BACKUP_REMOTE_CA_FILE"] else ()

    @property
    def repository(self) -> str:
        return f"s3:{self.endpoint}/{self.bucket}{f'/{self.prefix}' if self.prefix else ''}"

    def label(self) -> str:
        return self.repository


def parse_target(value: str) -> Target | S3Target:
    """BACKUP_REMOTE: sftp:USER@HOST:/PATH, sftp://USER@HOST:PORT//PATH or s3:https://HOST[:PORT]/BUCKET[/PREFIX]
    (no scheme: https); one line naming the setting otherwise."""
    if match := _SFTP.fullmatch(value):
        return Target(match["user"], match["host"], 22, match["path"])
    if (match := _SFTP_URL.fullmatch(value)) and 0 < int(match["port"] or 22) < 65536:
        return Target(match["user"], match["host"], int(match["port"] or 22), match["path"])
    if (match := _S3.fullmatch(value)) and 0 < int(match["port"] or 443) < 65536:
        port = f":{match['port']}" if match["port"] else ""
        return S3Target(f"{match['scheme'] or 'https://'}{match['host']}{port}", match["bucket"], match["prefix"] or "")
    raise UserError(
        f"BACKUP_REMOTE={value!r} is neither an SFTP nor an S3 target; use sftp:USER@HOST:/PATH, "
        "sftp://USER@HOST:PORT//PATH or s3:https://HOST[:PORT]/BUCKET[/PREFIX]"
    )


def build_image(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """docker/offline/compose.yaml's restic service, on the offline rootfs (argv and its environment)."""
    env = {**offline.build_images_env(settings), "OFFLINE_RESTIC_IMAGE": IMAGE}
    return offline.build_images_argv(settings, ["restic"]), env


def made_already(init_stderr: str) -> bool:
    """Whether restic init failed only because the repository is there already."""
    return bool(_MADE_ALREADY.search(init_stderr))


def snapshot_tags(project: str, name: str) -> list[str]:
    return [f"project={project}", f"backup={name}"]


def find_snapshot(snapshots: list[dict], name: str, project: str) -> str:
    """The id of the snapshot holding backup `name`; refused: none, or one of another project."""
    for snapshot in snapshots:
        tags = snapshot.get("tags") or []
        if f"backup={name}" in tags:
            if f"project={project}" not in tags:
                other = next((tag.split("=", 1)[1] for tag in tags if tag.startswith("project=")), "unknown")
                raise UserError(f"remote backup {name} is a backup of project {other}, not of {project}; nothing was "
                                "restored")  # fmt: skip
            return str(snapshot["id"])
    raise UserError(
        f"no remote backup {name} in BACKUP_REMOTE (invoke db.list --remote shows them); nothing was restored"
    )


def remote_names(snapshots: list[dict], project: str) -> list[str]:
    """This project's backups in the repository, newest first."""
    names = [tag.split("=", 1)[1] for snapshot in snapshots if f"project={project}" in (snapshot.get("tags") or [])
             for tag in snapshot["tags"] if tag.startswith("backup=")]  # fmt: skip
    return sorted(set(names), reverse=True)


_RETRYING = re.compile(r"returned error, retrying after [^:]+: (?P<reason>.+)")


def failure(what: str, target: Target | S3Target, stderr: str, status: int, timeout: int | None = None) -> str:
    """One line: what failed, where, and restic's (or ssh's) own last words; when restic was still retrying at the
    deadline, the reason of its last retry."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    retries = [match["reason"] for line in lines if (match := _RETRYING.search(line))]
    if status == TIMED_OUT and timeout is not None:
        reason = f"no answer in {timeout} s (BACKUP_REMOTE_TIMEOUT)" + (f": {retries[-1]}" if retries else "")
    else:
        reason = next((line for line in reversed(lines) if "Fatal" in line or "denied" in line
                       or "error" in line.lower()), lines[-1] if lines else f"exit {status}")  # fmt: skip
    return f"{what} {target.label()} failed: {reason[:300]}"


@dataclass
class Remote:
    db: Database

    @property
    def settings(self) -> Settings:
        return self.db.settings

    def target(self) -> Target | S3Target | None:
        value = self.settings["BACKUP_REMOTE"]
        if not value:
            return None
        target = parse_target(value)
        for name in (PASSWORD, *target.secrets, *target.optional_files(self.settings)):
            path = self.settings[name]  # relative: to the checkout, as every PATH setting
            if not path or not (self.settings.root / self.settings.typed(name)).is_file():
                raise UserError(f"BACKUP_REMOTE is set but {name}={path!r} is not a file; set it (docs/data.md)")
        return target

    def _restic(self, target: Target | S3Target, *args: str, writable: bool = False, folder: Path | None = None,
                first_contact: bool = False):  # fmt: skip
        """One restic command; `first_contact`: bounded by BACKUP_REMOTE_TIMEOUT (restic would retry for 15 min)."""
        self._ensure_image()
        timeout = self.settings.typed("BACKUP_REMOTE_TIMEOUT") if first_contact else None
        argv = restic(self.settings, target, folder or self.db.folder, *args, writable=writable, timeout=timeout)
        return self.db.run(argv, env=self.settings.env, capture=True, warn=True)

    def _failure(self, what: str, target: Target | S3Target, done) -> str:
        return failure(what, target, done.stderr, done.return_code, self.settings.typed("BACKUP_REMOTE_TIMEOUT"))

    def _ensure_image(self) -> None:
        if not self.db.run(docker.docker_argv("image", "inspect", IMAGE), warn=True, capture=True).ok:
            argv, env = build_image(self.settings)
            self.db.run(argv, env=env)

    def push(self, path: Path) -> None:
        """Copy one backup and its manifest into the repository (made on first use); one line when it fails."""
        target = self.target()
        if target is None:
            return
        kept = f"; the local backup {path.name} is kept"
        made = self._restic(target, "init", first_contact=True)  # the repository (and an S3 bucket) on first use
        if not made.ok and not made_already(made.stderr):
            raise UserError(self._failure("reaching", target, made) + kept)
        tags = [flag for tag in snapshot_tags(self.settings.project_name, path.name) for flag in ("--tag", tag)]
        pushed = self._restic(target, "backup", "--host", "lifecycle", *tags, f"{MOUNT}/{path.name}",
                              f"{MOUNT}/{manifest_path(path).name}")  # fmt: skip
        if not pushed.ok:
            raise UserError(self._failure("pushing to", target, pushed) + kept)
        self.db.say(f"remote: {path.name} pushed to {target.label()} (encrypted by restic)")

    def snapshots(self, target: Target | S3Target) -> list[dict]:
        listed = self._restic(target, "snapshots", "--json", first_contact=True)
        if not listed.ok:
            raise UserError(self._failure("listing", target, listed))
        return json.loads(listed.stdout or "[]")

    def list(self) -> list[str]:
        target = self.target()
        if target is None:
            raise UserError("BACKUP_REMOTE is not set; nothing to list (docs/data.md: a remote target)")
        names = remote_names(self.snapshots(target), self.settings.project_name)
        return names or [f"no backups of {self.settings.project_name} in {target.label()}"]

    def newest(self) -> Path:
        """This project's newest backup in the repository, as a local file (fetched unless already here)."""
        target = self.target()
        if target is None:
            raise UserError("BACKUP_REMOTE is not set; nothing to take from it (docs/data.md)")
        names = remote_names(self.snapshots(target), self.settings.project_name)
        if not names:
            raise UserError(f"no backups of {self.settings.project_name} in {target.label()}; take one with invoke "
                            "db.backup")  # fmt: skip
        local = self.db.folder / names[0]
        return local if local.exists() else self.fetch(names[0])

    def fetch(self, name: str) -> Path:
        """Restore backup `name` from the repository into BACKUP_DIR (restic checks every byte it decrypts), then
        verify it as any backup; a failure leaves nothing behind."""
        target = self.target()
        if target is None or not name.endswith(SUFFIXES) or "/" in name:
            raise UserError(f"{name} is not a local backup, and there is no remote to fetch it from; nothing was "
                            "restored")  # fmt: skip
        snapshot = find_snapshot(self.snapshots(target), name, self.settings.project_name)
        staging = private.private_folder(self.db.folder / f".fetch-{secrets.token_hex(4)}")
        try:
            fetched = self._restic(target, "restore", snapshot, "--target", MOUNT, "--verify", writable=True,
                                   folder=staging)  # fmt: skip
            if not fetched.ok:
                raise UserError(self._failure("fetching from", target, fetched) + "; nothing was restored")
            dump = staging / MOUNT.strip("/") / name
            verify(dump)
            final = self.db.folder / name
            manifest_path(dump).replace(manifest_path(final))
            dump.replace(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.db.say(f"remote: fetched {name} from {target.label()} (decrypted and verified)")
        return final
