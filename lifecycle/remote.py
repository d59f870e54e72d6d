"""Backups off the machine, encrypted: restic (Debian's, in the offline restic image) to BACKUP_REMOTE over SFTP.

restic encrypts and authenticates every byte with the repository password (BACKUP_REMOTE_PASSWORD_FILE) and
deduplicates; the SSH key (BACKUP_REMOTE_SSH_KEY_FILE) and the server's host key (BACKUP_REMOTE_KNOWN_HOSTS_FILE:
no first-use trust) are files mounted read-only into the container, never on a command line or printed. Each
backup is one snapshot tagged with the project and the backup's name, so a backup of another project is refused by
name. Builders (lifecycle.commands.restic) return argv; `Remote` sequences them; every failure is one line, and a
local backup is never touched by one.
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
from lifecycle.backup_file import SUFFIX, manifest_path, verify
from lifecycle.commands import docker
from lifecycle.commands.restic import IMAGE, MOUNT, restic
from lifecycle.errors import UserError
from lifecycle.settings import Settings

_SFTP = re.compile(r"sftp:(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<path>/[^\s]*)")
_SFTP_URL = re.compile(
    r"sftp://(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?/(?P<path>/\S*)"
)
NOT_FOUND = 10  # restic's exit status when the repository does not exist (0.17 and later)


@dataclass(frozen=True)
class Target:
    user: str
    host: str
    port: int
    path: str

    @property
    def repository(self) -> str:
        return f"sftp:{self.user}@{self.host}:{self.path}"

    def label(self) -> str:
        return f"sftp:{self.user}@{self.host}{f':{self.port}' if self.port != 22 else ''}:{self.path}"


def parse_target(value: str) -> Target:
    """BACKUP_REMOTE: sftp:USER@HOST:/PATH or sftp://USER@HOST:PORT//PATH; one line naming the setting otherwise."""
    if match := _SFTP.fullmatch(value):
        return Target(match["user"], match["host"], 22, match["path"])
    if (match := _SFTP_URL.fullmatch(value)) and 0 < int(match["port"] or 22) < 65536:
        return Target(match["user"], match["host"], int(match["port"] or 22), match["path"])
    raise UserError(
        f"BACKUP_REMOTE={value!r} is not an SFTP target; use sftp:USER@HOST:/PATH or sftp://USER@HOST:PORT//PATH "
        "(S3 is not supported yet)"
    )


def build_image(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """docker/offline/compose.yaml's restic service, on the offline rootfs (argv and its environment)."""
    env = {**offline.build_images_env(settings), "OFFLINE_RESTIC_IMAGE": IMAGE}
    return offline.build_images_argv(settings, ["restic"]), env


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


def failure(what: str, target: Target, stderr: str, status: int) -> str:
    """One line: what failed, where, and restic's (or ssh's) own last words."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = next((line for line in reversed(lines) if "Fatal" in line or "denied" in line or "error" in line.lower()),
                  lines[-1] if lines else f"exit {status}")  # fmt: skip
    return f"{what} {target.label()} failed: {reason[:300]}"


@dataclass
class Remote:
    db: Database

    @property
    def settings(self) -> Settings:
        return self.db.settings

    def target(self) -> Target | None:
        value = self.settings["BACKUP_REMOTE"]
        if not value:
            return None
        target = parse_target(value)
        for name in ("BACKUP_REMOTE_PASSWORD_FILE", "BACKUP_REMOTE_SSH_KEY_FILE", "BACKUP_REMOTE_KNOWN_HOSTS_FILE"):
            path = self.settings[name]  # relative: to the checkout, as every PATH setting
            if not path or not (self.settings.root / self.settings.typed(name)).is_file():
                raise UserError(f"BACKUP_REMOTE is set but {name}={path!r} is not a file; set it (docs/data.md)")
        return target

    def _restic(self, target: Target, *args: str, writable: bool = False, folder: Path | None = None):
        self._ensure_image()
        argv = restic(self.settings, target, folder or self.db.folder, *args, writable=writable)
        return self.db.run(argv, env=self.settings.env, capture=True, warn=True)

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
        found = self._restic(target, "cat", "config")
        if found.return_code == NOT_FOUND:
            made = self._restic(target, "init")
            if not made.ok:
                raise UserError(failure("creating the repository at", target, made.stderr, made.return_code) + kept)
        elif not found.ok:
            raise UserError(failure("reaching", target, found.stderr, found.return_code) + kept)
        tags = [flag for tag in snapshot_tags(self.settings.project_name, path.name) for flag in ("--tag", tag)]
        pushed = self._restic(target, "backup", "--host", "lifecycle", *tags, f"{MOUNT}/{path.name}",
                              f"{MOUNT}/{manifest_path(path).name}")  # fmt: skip
        if not pushed.ok:
            raise UserError(failure("pushing to", target, pushed.stderr, pushed.return_code) + kept)
        self.db.say(f"remote: {path.name} pushed to {target.label()} (encrypted by restic)")

    def snapshots(self, target: Target) -> list[dict]:
        listed = self._restic(target, "snapshots", "--json")
        if not listed.ok:
            raise UserError(failure("listing", target, listed.stderr, listed.return_code))
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
        if target is None or not name.endswith(SUFFIX) or "/" in name:
            raise UserError(f"{name} is not a local backup, and there is no remote to fetch it from; nothing was "
                            "restored")  # fmt: skip
        snapshot = find_snapshot(self.snapshots(target), name, self.settings.project_name)
        staging = private.private_folder(self.db.folder / f".fetch-{secrets.token_hex(4)}")
        try:
            fetched = self._restic(target, "restore", snapshot, "--target", MOUNT, "--verify", writable=True,
                                   folder=staging)  # fmt: skip
            if not fetched.ok:
                raise UserError(failure("fetching from", target, fetched.stderr, fetched.return_code)
                                + "; nothing was restored")  # fmt: skip
            dump = staging / MOUNT.strip("/") / name
            verify(dump)
            final = self.db.folder / name
            manifest_path(dump).replace(manifest_path(final))
            dump.replace(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.db.say(f"remote: fetched {name} from {target.label()} (decrypted and verified)")
        return final
