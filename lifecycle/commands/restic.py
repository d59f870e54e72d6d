"""restic's argv: one restic command in a throwaway container of the offline restic image, its secrets mounted
read-only (lifecycle.remote sequences them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.commands import docker
from lifecycle.settings import Settings

if TYPE_CHECKING:
    from lifecycle.remote import Target

IMAGE = "lifecycle/restic:0.18"  # docker/offline/restic.Dockerfile on OFFLINE_ROOTFS_IMAGE
SECRETS = "/run/lifecycle"
MOUNT = "/backups"


def ssh_command(target: Target) -> str:
    """restic's sftp.command: the key and known hosts from the mounted files; strict host keys; no prompts."""
    return (
        f"ssh -i {SECRETS}/ssh_key -o UserKnownHostsFile={SECRETS}/known_hosts -o StrictHostKeyChecking=yes "
        f"-o BatchMode=yes -o ConnectTimeout=10 -o IdentitiesOnly=yes -p {target.port} {target.user}@{target.host} "
        "-s sftp"
    )


def restic(settings: Settings, target: Target, folder: Path, *args: str, writable: bool = False) -> list[str]:
    """One restic command in a throwaway container: the host's network (the target as the host reaches it), the
    caller's uid (the 0600 key), the three files read-only, the backups folder at /backups."""
    files = {
        "restic_password": settings.root / settings.typed("BACKUP_REMOTE_PASSWORD_FILE"),
        "ssh_key": settings.root / settings.typed("BACKUP_REMOTE_SSH_KEY_FILE"),
        "known_hosts": settings.root / settings.typed("BACKUP_REMOTE_KNOWN_HOSTS_FILE"),
    }  # relative paths: to the checkout (docker would read a bare name as a volume)
    mounts = [flag for name, path in files.items() for flag in ("--volume", f"{path}:{SECRETS}/{name}:ro")]
    return docker.docker_argv(
        "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}", *mounts,
        "--volume", f"{folder}:{MOUNT}{'' if writable else ':ro'}",
        "--env", f"RESTIC_PASSWORD_FILE={SECRETS}/restic_password", "--env", f"RESTIC_REPOSITORY={target.repository}",
        IMAGE, "--option", f"sftp.command={ssh_command(target)}", *args,
    )  # fmt: skip
