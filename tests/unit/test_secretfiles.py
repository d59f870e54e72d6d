"""Compose secrets as files (lifecycle/secretfiles.py): where they are written, with which modes, what compose is
told, and that compose.yaml hands no secret value to any container's environment."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from lifecycle import secretfiles
from lifecycle.commands import dbclient
from tests.helpers import CHECKOUT

VALUES = {"DJANGO_SECRET_KEY": "key-0123456789", "DB_PASSWORD": "app-0123456789", "DB_ROOT_PASSWORD": "root-0123456789"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_prepare_writes_each_secret_in_a_private_folder(make_settings):
    settings = make_settings(COMPOSE_PROJECT_NAME="shop", **VALUES)
    env = secretfiles.prepare(settings, write=True)
    folder = settings.root / ".lifecycle" / "secrets" / "shop"
    assert env["SECRETS_DIR"] == str(folder)
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
    for secret in secretfiles.SECRETS:
        assert (folder / secret.file).read_text() == VALUES[secret.setting]
        assert mode(folder / secret.file) == 0o644  # read by the containers' own uids, behind the 0700 folder
    assert mode(folder / ".salt") == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [".salt", "db_password", "db_root_password", "django_secret_key"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", env[label]) for label in secretfiles.VERSIONS)
    assert not any(value in str(env) for value in VALUES.values())


def test_an_unchanged_value_keeps_its_file_and_label_a_changed_one_changes_both(make_settings):
    first = make_settings(COMPOSE_PROJECT_NAME="shop", **VALUES)
    env = secretfiles.prepare(first, write=True)
    path = secretfiles.folder(first) / "db_password"
    inode = path.stat().st_ino
    assert secretfiles.prepare(first, write=True) == env
    assert path.stat().st_ino == inode, "a running container's bind mount keeps its file"
    changed = secretfiles.prepare(
        make_settings(COMPOSE_PROJECT_NAME="shop", **{**VALUES, "DB_PASSWORD": "new"}), write=True
    )
    assert path.read_text() == "new"
    assert changed["DB_SECRETS_VERSION"] != env["DB_SECRETS_VERSION"]
    assert changed["APP_SECRETS_VERSION"] != env["APP_SECRETS_VERSION"]
    key_only = secretfiles.prepare(make_settings(COMPOSE_PROJECT_NAME="shop", **{**VALUES, "DJANGO_SECRET_KEY": "k2"}),
                                   write=True)  # fmt: skip
    assert key_only["DB_SECRETS_VERSION"] == env["DB_SECRETS_VERSION"], "a new app key does not restart the database"


def test_a_missing_value_is_generated_once_and_kept(make_settings):
    settings = make_settings(COMPOSE_PROJECT_NAME="shop")
    secretfiles.prepare(settings, write=True)
    first = (secretfiles.folder(settings) / "db_password").read_text()
    assert len(first) >= 24 and first not in secretfiles.PUBLIC_VALUES
    secretfiles.prepare(settings, write=True)
    assert (secretfiles.folder(settings) / "db_password").read_text() == first


def test_a_planted_symlink_is_replaced_not_followed(make_settings, tmp_path):
    settings = make_settings(COMPOSE_PROJECT_NAME="shop", **VALUES)
    folder = secretfiles.folder(settings)
    folder.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (folder / "db_password").symlink_to(victim)
    secretfiles.prepare(settings, write=True)
    assert victim.read_text() == "untouched"
    assert not (folder / "db_password").is_symlink()


def test_dry_run_writes_nothing(make_settings):
    settings = make_settings(COMPOSE_PROJECT_NAME="shop", **VALUES)
    assert secretfiles.prepare(settings, write=False)["SECRETS_DIR"] == str(secretfiles.folder(settings))
    assert not (settings.root / ".lifecycle").exists()


def test_remove_deletes_the_projects_folder_only(make_settings):
    shop, other = (make_settings(COMPOSE_PROJECT_NAME=name, **VALUES) for name in ("shop", "other"))
    for settings in (shop, other):
        secretfiles.prepare(settings, write=True)
    assert secretfiles.remove(shop)
    assert not secretfiles.folder(shop).exists() and secretfiles.folder(other).is_dir()
    assert not secretfiles.remove(shop)


# ----------------------------------------------------------------------------------- compose.yaml hands out files

COMPOSE_TEXT = (CHECKOUT / "docker" / "compose.yaml").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
PUBLIC = secretfiles.PUBLIC_VALUES
SECRET_VARIABLES = ("DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD")


def test_compose_interpolates_no_secret_and_has_no_fallback_password():
    for name in ("DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD"):
        assert "${" + name not in COMPOSE_TEXT, f"compose.yaml interpolates {name}: its value would be in inspect"
    for value in secretfiles.PUBLIC_VALUES - {"test-only-not-secret"}:  # qa's key is for the tests, no secret
        assert value not in COMPOSE_TEXT


@pytest.mark.parametrize("service", sorted(s for s in COMPOSE["services"] if not s.startswith("sbom-")))
def test_every_service_reads_its_secrets_from_the_files_it_mounts(service):
    definition = COMPOSE["services"][service]
    environment = definition.get("environment") or {}
    # test-qa's DJANGO_SECRET_KEY is the tests' own published value, no secret
    leaked = {name for name in SECRET_VARIABLES if name in environment and environment[name] not in PUBLIC}
    assert not leaked, f"{service} gets {leaked} as environment variables"
    mounted = {f"/run/secrets/{name}" for name in definition.get("secrets") or []}
    read = {value for name, value in environment.items() if name.endswith("_FILE") and value}
    assert read <= mounted, f"{service} reads {read - mounted}, which it does not mount"
    assert all(name in COMPOSE["secrets"] for name in definition.get("secrets") or [])
    if service in ("stage", "prod"):
        assert environment["DJANGO_SECRET_KEY_FILE"] == "/run/secrets/django_secret_key"
    if service in ("db", "dev", "test-qa", "stage", "prod"):
        assert "/run/secrets/db_password" in read


# ------------------------------------------------------------------------- the db client reads the password files


@pytest.mark.parametrize(
    ("environ", "password"),
    [
        pytest.param({"MYSQL_ROOT_PASSWORD_FILE": "{file}"}, "from-file pw'\"$x", id="from the compose secret's file"),
        pytest.param({"MYSQL_ROOT_PASSWORD": "from-env"}, "from-env", id="a container made before the files"),
    ],
)
def test_the_db_client_scripts_take_the_password_from_the_file(tmp_path, environ, password):
    secret = tmp_path / "db_root_password"
    secret.write_text("from-file pw'\"$x")
    client = tmp_path / "client"
    client.write_text('#!/bin/sh\nprintf "%s|%s\\n" "$MYSQL_PWD" "$*"\n')
    client.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", **{k: v.format(file=secret) for k, v in environ.items()}}
    done = subprocess.run(["sh", "-c", dbclient.AS_ROOT, "sh", str(client), "--batch"], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout == f"{password}|--user=root --batch\n"


def test_an_unreadable_password_file_stops_the_client(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MYSQL_ROOT_PASSWORD_FILE": str(tmp_path / "missing")}
    done = subprocess.run(["sh", "-c", dbclient.AS_ROOT, "sh", "echo", "ran"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "ran" not in done.stdout
