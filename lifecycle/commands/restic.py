"""restic's argv: one restic command in a throwaway container of the offline restic image, its secrets mounted
read-only (lifecycle.remote sequences them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle.commands import docker
from lifecycle.settings import Settings

if TYPE_CHECKING:
    from lifecycle.remote import S3Target, Target

IMAGE = "lifecycle/restic:0.18"  # docker/offline/restic.Dockerfile on OFFLINE_ROOTFS_IMAGE
SECRETS = "/run/lifecycle"
MOUNT = "/backups"
# Each secret file setting, the name it is mounted under, and the variable that tells restic where it is.
SECRET_FILES = {
    "BACKUP_REMOTE_PASSWORD_FILE": ("restic_password", "RESTIC_PASSWORD_FILE"),
    "BACKUP_REMOTE_SSH_KEY_FILE": ("ssh_key", None),  # read by ssh_command's -i
    "BACKUP_REMOTE_KNOWN_HOSTS_FILE": ("known_hosts", None),
    "BACKUP_REMOTE_S3_CREDENTIALS_FILE": ("aws_credentials", "AWS_SHARED_CREDENTIALS_FILE"),  # [default] profile
    "BACKUP_REMOTE_CA_FILE": ("ca.crt", None),  # read by --cacert
}


def ssh_command(target: Target) -> str:
    """restic's sftp.command: the key and known hosts from the mounted files; strict host keys; no prompts."""
    return (
        f"ssh -i {SECRETS}/ssh_key -o UserKnownHostsFile={SECRETS}/known_hosts -o StrictHostKeyChecking=yes "
        f"-o BatchMode=yes -o ConnectTimeout=10 -o IdentitiesOnly=yes -p {target.port} {target.user}@{target.host} "
        "-s sftp"
    )


def restic(
    settings: Settings,
    target: Target | S3Target,
    folder: Path,
    *args: str,
    writable: bool = False,
    timeout: int | None = None,
) -> list[str]:
    """One restic command in a throwaway container: the host's network (the target as the host reaches it), the
    caller's uid (the 0600 key), the target's secret files read-only, the backups folder at /backups; `timeout`:
    ended by coreutils' timeout (exit 124) after that many seconds."""
    names = ("BACKUP_REMOTE_PASSWORD_FILE", *target.secrets, *target.optional_files(settings))
    # relative paths: to the checkout (docker would read a bare name as a volume)
    mounts = [
        flag
        for name in names
        for flag in ("--volume", f"{settings.root / settings.typed(name)}:{SECRETS}/{SECRET_FILES[name][0]}:ro")
    ]
    variables = [flag for name in names if (variable := SECRET_FILES[name][1])
                 for flag in ("--env", f"{variable}={SECRETS}/{SECRET_FILES[name][0]}")]  # fmt: skip
    options = ["--option", f"sftp.command={ssh_command(target)}"] if "BACKUP_REMOTE_SSH_KEY_FILE" in names else []
    options += ["--cacert", f"{SECRETS}/ca.crt"] if "BACKUP_REMOTE_CA_FILE" in names else []
    deadline = ["--entrypoint", "timeout"] if timeout else []
    return docker.docker_argv(
        "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}", *mounts,
        "--volume", f"{folder}:{MOUNT}{'' if writable else ':ro'}",
        *variables, "--env", f"RESTIC_REPOSITORY={target.repository}", *deadline,
        IMAGE, *([str(timeout), "restic"] if timeout else []), *options, *args,
    )  # fmt: skip
