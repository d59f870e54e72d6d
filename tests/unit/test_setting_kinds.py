"""Typed settings: each row's kind turns a value into its typed value or one line naming the setting and its layer."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from lifecycle.errors import UserError
from lifecycle.settings import load_settings
from lifecycle.settings_table import BY_NAME, TABLE


@pytest.mark.parametrize(
    ("name", "text", "typed"),
    [
        ("APP_PORT", "1", 1),
        ("HTTPS_PORT", "65535", 65535),
        ("WAIT_TIMEOUT", "30", 30),
        ("DEPLOY_TIMEOUT", "300", 300),
        ("DEPLOY_REPLICAS", "3", 3),
        ("BACKUP_KEEP", "1", 1),
        ("BACKUP_HOURLY", "0", 0),
        ("BACKUP_WEEKLY", "52", 52),
        ("DB_SERVER_ID", "4294967295", 4294967295),
        ("DB_BINLOG_SECONDS", "604800", 604800),
        ("BACKUP_REMOTE_SSH_KEY_FILE", "", None),
        ("BACKUP_REMOTE_PASSWORD_FILE", "keys/restic", Path("keys/restic")),
        ("ALLOW_UNSIGNED", "YES", True),
        ("ALLOW_UNSIGNED", "off", False),
        ("LAYER_STATIC", "0", False),
        ("ALLOW_UNSIGNED", "", False),
        ("TEST_RUNNER", "django", "django"),
        ("BACKUP_DIR", "/srv/backups", Path("/srv/backups")),
        ("EXTRA_CA_DIR", "", None),
        ("PROJECT_DIR", "src", Path("src")),
        ("CLUSTER_DIR", "/var/lib/c", Path("/var/lib/c")),
        ("CLUSTER_SUBNET", "10.9.0.0/28", ipaddress.IPv4Network("10.9.0.0/28")),
        ("CODE", "manage.py  shop\tapi", ("manage.py", "shop", "api")),
        ("BUILD_STEPS", "compress; collectstatic --clear ;", ("compress", "collectstatic --clear")),
        ("RELEASE_COMMANDS", "", ()),
        ("DB_IMAGE", "mariadb:11.4", "mariadb:11.4"),
        ("DB_IMAGE", "registry.example.com:5000/team/mysql:8.4", "registry.example.com:5000/team/mysql:8.4"),
        ("PROXY_IMAGE", "haproxy@sha256:" + "a" * 64, "haproxy@sha256:" + "a" * 64),
        ("CLUSTER_REGISTRY_IMAGE", "lifecycle/registry:2.8", "lifecycle/registry:2.8"),
        ("REGISTRY_IMAGE", "localhost:5000/registry:2", "localhost:5000/registry:2"),
        ("WSGI_APP", "shop.wsgi:application", "shop.wsgi:application"),
        ("SETTINGS_TEST", "", ""),
        ("TZ", "Europe/Paris", "Europe/Paris"),
        ("DEPLOY_LOCK_WAIT", "0", 0),
        ("DEPLOY_LOCK_TIMEOUT", "3600", 3600),
        ("MAINTENANCE_ALLOW", " 203.0.113.7, 10.0.0.0/8,", ("203.0.113.7/32", "10.0.0.0/8")),
        ("MAINTENANCE_ALLOW", "", ()),
        ("MAINTENANCE_PAGE", "templates/down.html", Path("templates/down.html")),
    ],
)
def test_a_value_reads_as_its_typed_value(name, text, typed):
    assert BY_NAME[name].convert(text) == typed


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("DEBUG_PORT", "0", "DEBUG_PORT='0' is not a port number; set it to a number from 1 to 65535"),
        ("DEPLOY_TIMEOUT", "5m", "DEPLOY_TIMEOUT='5m' is not a number of seconds; set it to a whole number above 0"),
        ("DEPLOY_REPLICAS", "0", "DEPLOY_REPLICAS='0' is not a count of at least 1; set it to e.g. 2"),
        ("BACKUP_KEEP", "-3", "BACKUP_KEEP='-3' is not a count of at least 1; set it to e.g. 10"),
        ("BACKUP_DAILY", "-1", "BACKUP_DAILY='-1' is not a count; set it to a whole number, e.g. 7 (0: none)"),
        ("DB_SERVER_ID", "0", "DB_SERVER_ID='0' is not a whole number from 1 to 4294967295; e.g. 1"),
        (
            "DB_BINLOG_SECONDS",
            "4294967296",
            "DB_BINLOG_SECONDS='4294967296' is not a whole number from 1 to 4294967295; e.g. 604800",
        ),
        ("ALLOW_UNSIGNED", "maybe", "ALLOW_UNSIGNED='maybe' is not a boolean; set it to true or false"),
        ("TEST_RUNNER", "nose", "TEST_RUNNER='nose' is not valid; set it to one of: pytest, django"),
        ("DB_IMAGE", "MySQL:8", "DB_IMAGE='MySQL:8' is not an image reference; e.g. mysql:8.4 or host/name:tag"),
        (
            "PROXY_IMAGE",
            "haproxy:",
            "PROXY_IMAGE='haproxy:' is not an image reference; e.g. mysql:8.4 or host/name:tag",
        ),
        ("PROJECT_DIR", "../other", "PROJECT_DIR='../other' must be a folder inside the checkout; e.g. . or src"),
        ("CLUSTER_DIR", "rel", "CLUSTER_DIR='rel' must be an absolute path, e.g. /var/lib/lifecycle-cluster"),
        ("HEALTH_PATH", "health", "HEALTH_PATH='health' must be a path below the root; e.g. /health"),
        ("DEPLOY_LOCK_WAIT", "-1", "DEPLOY_LOCK_WAIT='-1' is not a whole number of seconds; e.g. 600 (0: none)"),
        (
            "MAINTENANCE_ALLOW",
            "10.0.0.0/8,intranet",
            "MAINTENANCE_ALLOW='10.0.0.0/8,intranet' has 'intranet', not an address or network; "
            "e.g. 203.0.113.7,10.0.0.0/8",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting_and_the_layer(tmp_path, name, text, line):
    with pytest.raises(UserError) as error:
        load_settings(root=tmp_path, environ={name: text})
    assert str(error.value) == f"{line} (from the environment)"


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_every_bad_value_is_reported_once_each_from_its_own_layer(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.lifecycle]\nwait-timeout = "soon"\nbackup-keep = 5\n')
    write(tmp_path, ".lifecycle/images.env", "DB_IMAGE=Bad Image\n")
    write(tmp_path, ".env", "APP_PORT=eighty\nBACKUP_KEEP=0\n")
    with pytest.raises(UserError) as error:
        load_settings(root=tmp_path, environ={"HTTPS_PORT": "99999"})
    assert str(error.value).splitlines() == [
        "DB_IMAGE='Bad Image' is not an image reference; e.g. mysql:8.4 or host/name:tag (from .lifecycle/images.env)",
        "APP_PORT='eighty' is not a port number; set it to a number from 1 to 65535 (from .env)",
        "WAIT_TIMEOUT='soon' is not a number of seconds; set it to a whole number above 0 "
        "(from pyproject.toml [tool.lifecycle])",
        "BACKUP_KEEP='0' is not a count of at least 1; set it to e.g. 10 (from .env)",
        "HTTPS_PORT='99999' is not a port number; set it to a number from 1 to 65535 (from the environment)",
    ]


def test_a_task_option_is_checked_like_a_setting_and_named_by_its_option(tmp_path):
    settings = load_settings(root=tmp_path, environ={})
    assert settings.override({"WAIT_TIMEOUT": "--wait-timeout"}, WAIT_TIMEOUT=None).typed("WAIT_TIMEOUT") == 180
    assert settings.override({"WAIT_TIMEOUT": "--wait-timeout"}, WAIT_TIMEOUT="30").typed("WAIT_TIMEOUT") == 30
    with pytest.raises(UserError) as error:
        settings.override({"WAIT_TIMEOUT": "--wait-timeout"}, WAIT_TIMEOUT="0")
    assert str(error.value) == (
        "--wait-timeout '0' is not a number of seconds; set it to a whole number above 0 (WAIT_TIMEOUT)"
    )
    with pytest.raises(UserError, match=r"\(from a task option\)$"):
        settings.override(APP_PORT="http")


def test_deploy_wait_is_the_deploy_lock_wait_option(tmp_path):
    settings = load_settings(root=tmp_path, environ={})
    assert settings.override({"DEPLOY_LOCK_WAIT": "--wait"}, DEPLOY_LOCK_WAIT="600").typed("DEPLOY_LOCK_WAIT") == 600
    with pytest.raises(UserError) as error:
        settings.override({"DEPLOY_LOCK_WAIT": "--wait"}, DEPLOY_LOCK_WAIT="soon")
    assert str(error.value) == "--wait 'soon' is not a whole number of seconds; e.g. 600 (0: none) (DEPLOY_LOCK_WAIT)"


def test_every_default_is_valid_and_every_row_has_a_kind():
    for setting in TABLE:
        setting.convert(setting.default)
        assert setting.kind.name
