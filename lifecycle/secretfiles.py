"""The compose stack's secrets as files, so no secret value is ever a container's environment variable.

`docker inspect` shows a container's whole environment and `docker compose config` prints every interpolated
value, so DJANGO_SECRET_KEY, DB_PASSWORD and DB_ROOT_PASSWORD reach the containers as compose `secrets:` instead:
files bind-mounted at /run/secrets/NAME, read through the `*_FILE` variables (bash_files/file_env.sh, the
database images, django_site/settings.py) exactly as the swarm stack reads its Swarm secrets.

The files live in SECRETS_DIR = .lifecycle/secrets/PROJECT/, written from the settings (.env, the environment)
before every compose call. The folders are 0700, so no other host user can reach a file; the files themselves
are 0644 because a bind mount keeps the host's owner and mode, and the containers read them as uids of their own
(10001 in stage and prod, 999 in the database), never the host user's. A changed value changes the label
`io.lifecycle.secrets` (an HMAC of the values under a random per-project salt, which says nothing about them),
so compose recreates the containers that use it.

stage and prod never run on a missing value or on one of the old literal defaults (`refusal`); for dev and qa a
missing database password is generated once and kept in its file (no literal default anywhere).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle import private
from lifecycle.settings import Settings
from lifecycle.stages import Stage

FOLDER = Path(".lifecycle") / "secrets"
SALT_FILE = ".salt"


@dataclass(frozen=True)
class Secret:
    setting: str  # the .env name: DB_PASSWORD
    file: str  # the compose secret and the file name under SECRETS_DIR and /run/secrets/: db_password
    generate_bytes: int  # token_urlsafe(n) when dev or qa finds no value


SECRETS = (
    Secret("DJANGO_SECRET_KEY", "django_secret_key", 50),
    Secret("DB_PASSWORD", "db_password", 24),
    Secret("DB_ROOT_PASSWORD", "db_root_password", 24),
)
# The labels (compose `${VAR}`) that change with the values their containers read.
VERSIONS = {
    "DB_SECRETS_VERSION": ("DB_PASSWORD", "DB_ROOT_PASSWORD"),
    "APP_SECRETS_VERSION": ("DJANGO_SECRET_KEY", "DB_PASSWORD"),
}
# Literal values the compose file and settings used to fall back to, or that are published in this repository:
# stage and prod refuse them as they refuse a missing one.
PUBLIC_VALUES = frozenset(
    {
        "app-dev-password",
        "root-dev-password",
        "test-only-not-secret",
        "django-insecure-dev-only-key-never-use-outside-debug",
    }
)


def folder(settings: Settings) -> Path:
    return settings.root / FOLDER / settings.project_name


def refusal(env: Mapping[str, str], stage: Stage) -> str | None:
    """Why `stage` must not start with these settings (one line, naming what to do), or None."""
    if not stage.needs_secret_key:
        return None
    missing = [s.setting for s in SECRETS if not env.get(s.setting)]
    if missing:
        return (
            f"{stage} needs {', '.join(missing)}; set {'them' if len(missing) > 1 else 'it'} in .env "
            "(scripts/bootstrap fills in every missing secret of an existing .env)"
        )
    public = [s.setting for s in SECRETS if env[s.setting] in PUBLIC_VALUES]
    if public:
        return (
            f"{stage} refuses the published default value of {', '.join(public)}; set a secret of your own in .env "
            "(delete the line and run scripts/bootstrap to generate one)"
        )
    return None


def _private_folder(path: Path) -> None:
    for part in (path.parent, path):
        part.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(part, 0o700)


def values(settings: Settings, target: Path) -> dict[str, str]:
    """Each secret's value: from the settings, else the one generated before (in its file), else a new one."""
    found = {}
    for secret in SECRETS:
        value = settings.env.get(secret.setting, "")
        path = target / secret.file
        if not value and path.is_file():
            value = path.read_text(encoding="utf-8")
        found[secret.setting] = value or secrets.token_urlsafe(secret.generate_bytes)
    return found


def versions(salt: bytes, found: Mapping[str, str]) -> dict[str, str]:
    """VERSIONS' label values: an HMAC-SHA256 of the named values under the salt (16 hex digits)."""
    result = {}
    for label, names in VERSIONS.items():
        message = b"\0".join(found[name].encode() for name in names)
        result[label] = hmac.new(salt, message, hashlib.sha256).hexdigest()[:16]
    return result


def prepare(settings: Settings, *, write: bool) -> dict[str, str]:
    """The environment compose needs for the secrets (SECRETS_DIR and the version labels); with `write`, the
    files are written first (only those whose content changed, so a running container keeps its file)."""
    target = folder(settings)
    env = {"SECRETS_DIR": str(target)}
    if not write:
        return {**env, **dict.fromkeys(VERSIONS, "dry-run")}
    _private_folder(target)
    salt_path = target / SALT_FILE
    if not salt_path.is_file():
        private.replace_private(salt_path, secrets.token_bytes(32))
    found = values(settings, target)
    for secret in SECRETS:
        path, data = target / secret.file, found[secret.setting].encode()
        if path.is_symlink() or not path.is_file() or path.read_bytes() != data:
            private.replace_private(path, data, 0o644)  # the containers read it as their own uids (docstring)
    return {**env, **versions(salt_path.read_bytes(), found)}


def remove(settings: Settings) -> bool:
    """Delete the project's secret files (with its database volume: the next run writes them again)."""
    target = folder(settings)
    if not target.is_dir():
        return False
    shutil.rmtree(target)
    return True
