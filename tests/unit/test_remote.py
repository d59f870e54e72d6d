"""lifecycle.remote: BACKUP_REMOTE parsing, restic's argv (secrets only as mounted files), snapshot decisions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifecycle import remote
from lifecycle.commands import restic
from lifecycle.errors import UserError
from lifecycle.remote import S3Target, Target
from lifecycle.settings import load_settings

SECRET_FILES = {
    "BACKUP_REMOTE_PASSWORD_FILE": "/keys/pw",
    "BACKUP_REMOTE_SSH_KEY_FILE": "/keys/id",
    "BACKUP_REMOTE_KNOWN_HOSTS_FILE": "/keys/known",
}
SETTINGS = load_settings(root=Path("/checkout"), environ={"COMPOSE_PROJECT_NAME": "shop", **SECRET_FILES})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("sftp:vault@backup.example.com:/srv/restic", Target("vault", "backup.example.com", 22,
                     "/srv/restic"), id="restic's own form"),
        pytest.param("sftp://vault@127.0.0.1:2222//home/vault/repo", Target("vault", "127.0.0.1", 2222,
                     "/home/vault/repo"), id="a URL with a port"),
        pytest.param("sftp://vault@host//r", Target("vault", "host", 22, "/r"), id="a URL without a port"),
        pytest.param("s3:https://s3.example.com/shop-backups", S3Target("https://s3.example.com", "shop-backups"),
                     id="an S3 bucket"),
        pytest.param("s3:http://127.0.0.1:9000/b01/shop/prod/", S3Target("http://127.0.0.1:9000", "b01", "shop/prod"),
                     id="an S3 endpoint with a port, a prefix in the bucket"),
        pytest.param("s3:s3.eu-central-1.amazonaws.com/b01", S3Target("https://s3.eu-central-1.amazonaws.com", "b01"),
                     id="restic's form without a scheme: https"),
    ],
)  # fmt: skip
def test_parse_target(value, expected):
    assert remote.parse_target(value) == expected


@pytest.mark.parametrize(
    ("target", "repository", "label"),
    [
        (Target("vault", "h", 2222, "/r"), "sftp:vault@h:/r", "sftp:vault@h:2222:/r"),
        (S3Target("http://127.0.0.1:9000", "b01", "shop"), "s3:http://127.0.0.1:9000/b01/shop",
         "s3:http://127.0.0.1:9000/b01/shop"),
    ],
)  # fmt: skip
def test_a_target_names_restics_repository(target, repository, label):
    assert (target.repository, target.label()) == (repository, label)


@pytest.mark.parametrize(
    "value",
    ["sftp:host:/path", "sftp:vault@host:relative", "ftp://vault@host//r", "sftp://vault@host:99999//r",
     "sftp:vault@host:/p; rm -rf /", "s3:https://host/", "s3:https://host/Upper_Bucket", "s3:ftp://host/bucket",
     "s3:https://host:0/bucket", "s3:https://host/bucket/../x y", "s3:https://user:secret@host/bucket"],
)  # fmt: skip
def test_parse_target_refuses_what_it_cannot_use_in_one_line(value):
    with pytest.raises(UserError) as error:
        remote.parse_target(value)
    assert "is neither an SFTP nor an S3 target" in str(error.value) and "\n" not in str(error.value)


def test_restic_runs_in_a_container_with_the_secrets_as_read_only_files():
    target = Target("vault", "127.0.0.1", 2222, "/repo")
    argv = restic.restic(SETTINGS, target, Path("/checkout/backups"), "snapshots", "--json")
    assert argv[:6] == ["docker", "run", "--rm", "--network", "host", "--user"]
    assert argv[6] == f"{os.getuid()}:{os.getgid()}"
    mounts = [argv[i + 1] for i, flag in enumerate(argv) if flag == "--volume"]
    assert mounts == ["/keys/pw:/run/lifecycle/restic_password:ro", "/keys/id:/run/lifecycle/ssh_key:ro",
                      "/keys/known:/run/lifecycle/known_hosts:ro", "/checkout/backups:/backups:ro"]  # fmt: skip
    assert "RESTIC_PASSWORD_FILE=/run/lifecycle/restic_password" in argv
    assert "RESTIC_REPOSITORY=sftp:vault@127.0.0.1:/repo" in argv
    assert (
        argv[-4:]
        == [
            "--option",
            "sftp.command=ssh -i /run/lifecycle/ssh_key -o UserKnownHostsFile=/run/lifecycle/known_hosts "
            "-o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 -o IdentitiesOnly=yes -p 2222 "
            "vault@127.0.0.1 -s sftp",
            "snapshots",
            "--json",
        ][-4:]
    )
    writable = restic.restic(SETTINGS, target, Path("/b"), "restore", writable=True)
    assert "/b:/backups" in writable and "/b:/backups:ro" not in writable


def test_restic_reaches_s3_with_the_credentials_as_a_read_only_file_never_in_the_argv():
    settings = load_settings(root=Path("/checkout"), environ={
        "BACKUP_REMOTE_PASSWORD_FILE": "keys/pw", "BACKUP_REMOTE_S3_CREDENTIALS_FILE": "/keys/aws",
        "AWS_SECRET_ACCESS_KEY": "from-the-environment", "BACKUP_REMOTE_SSH_KEY_FILE": "/keys/id"})  # fmt: skip
    argv = restic.restic(settings, S3Target("http://127.0.0.1:9000", "b01", "shop"), Path("/b"), "snapshots")
    mounts = [argv[i + 1] for i, flag in enumerate(argv) if flag == "--volume"]
    assert mounts == ["/checkout/keys/pw:/run/lifecycle/restic_password:ro",
                      "/keys/aws:/run/lifecycle/aws_credentials:ro", "/b:/backups:ro"]  # fmt: skip
    variables = [argv[i + 1] for i, flag in enumerate(argv) if flag == "--env"]
    assert variables == ["RESTIC_PASSWORD_FILE=/run/lifecycle/restic_password",
                         "AWS_SHARED_CREDENTIALS_FILE=/run/lifecycle/aws_credentials",
                         "RESTIC_REPOSITORY=s3:http://127.0.0.1:9000/b01/shop"]  # fmt: skip
    assert argv[argv.index(restic.IMAGE) :] == [restic.IMAGE, "snapshots"]
    assert not any("sftp.command" in arg or "from-the-environment" in arg for arg in argv)
    with_ca = restic.restic(
        load_settings(
            root=Path("/checkout"),
            environ={
                **SECRET_FILES,
                "BACKUP_REMOTE_S3_CREDENTIALS_FILE": "/k/aws",
                "BACKUP_REMOTE_CA_FILE": "/k/ca.crt",
            },
        ),
        S3Target("https://h", "b01"),
        Path("/b"),
        "init",
    )
    assert "/k/ca.crt:/run/lifecycle/ca.crt:ro" in with_ca
    assert with_ca[with_ca.index(restic.IMAGE) :] == [restic.IMAGE, "--cacert", "/run/lifecycle/ca.crt", "init"]


def test_the_first_contact_is_ended_by_a_deadline():
    argv = restic.restic(SETTINGS, Target("vault", "h", 22, "/r"), Path("/b"), "cat", "config", timeout=60)
    image = argv.index(restic.IMAGE)
    assert argv[image - 2 : image] == ["--entrypoint", "timeout"]
    assert argv[image + 1 : image + 3] == ["60", "restic"] and argv[-2:] == ["cat", "config"]


SNAPSHOTS = [
    {"id": "aa", "tags": ["project=shop", "backup=shop-1.sql.gz"]},
    {"id": "bb", "tags": ["project=shop", "backup=shop-2.sql.gz"]},
    {"id": "cc", "tags": ["project=other", "backup=other-1.sql.gz"]},
    {"id": "dd", "tags": None},
]


def test_remote_names_are_this_projects_newest_first():
    assert remote.remote_names(SNAPSHOTS, "shop") == ["shop-2.sql.gz", "shop-1.sql.gz"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("shop-2.sql.gz", "bb", id="ours"),
        pytest.param("other-1.sql.gz", "is a backup of project other, not of shop", id="another project's"),
        pytest.param("shop-9.sql.gz", "no remote backup shop-9.sql.gz", id="none"),
    ],
)
def test_find_snapshot(name, expected):
    if expected == "bb":
        assert remote.find_snapshot(SNAPSHOTS, name, "shop") == "bb"
        return
    with pytest.raises(UserError, match=expected):
        remote.find_snapshot(SNAPSHOTS, name, "shop")


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        pytest.param("open repository\nvault@127.0.0.1: Permission denied (publickey).\nFatal: unable to open repo\n",
                     "Fatal: unable to open repo", id="restic's Fatal line"),
        pytest.param("", "exit 1", id="nothing said"),
    ],
)  # fmt: skip
def test_failure_is_one_line_with_restics_own_words(stderr, expected):
    line = remote.failure("reaching", Target("vault", "h", 22, "/r"), stderr, 1)
    assert line == f"reaching sftp:vault@h:/r failed: {expected}"


RETRYING = (
    "Stat(<config/>) returned error, retrying after 571ms: Stat: The request signature we calculated does not match\n"
    "Stat(<config/>) returned error, retrying after 2.3s: Stat: dial tcp 127.0.0.1:9: connect: connection refused\n"
    "signal terminated received, cleaning up\nFatal: unable to open config file: context canceled\n"
)


@pytest.mark.parametrize(
    ("stderr", "status", "expected"),
    [
        pytest.param(RETRYING, 124, "no answer in 5 s (BACKUP_REMOTE_TIMEOUT): Stat: dial tcp 127.0.0.1:9: connect: "
                     "connection refused", id="the last retry's reason at the deadline"),
        pytest.param("", 124, "no answer in 5 s (BACKUP_REMOTE_TIMEOUT)", id="no retry said"),
        pytest.param(RETRYING, 1, "Fatal: unable to open config file: context canceled", id="not the deadline"),
    ],
)  # fmt: skip
def test_a_deadline_failure_names_restics_last_reason(stderr, status, expected):
    line = remote.failure("reaching", S3Target("http://h", "b01"), stderr, status, timeout=5)
    assert line == f"reaching s3:http://h/b01 failed: {expected}"


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        pytest.param("Fatal: create repository at sftp:vault@h:/r failed: config file already exists\n", True,
                     id="SFTP: there already"),
        pytest.param("Fatal: create key in repository at s3:http://h/b failed: repository master key and config "
                     "already initialized\n", True, id="S3: there already"),
        pytest.param("Fatal: create repository at s3:http://h/b failed: client.BucketExists: Access Denied.\n", False,
                     id="refused"),
        pytest.param("", False, id="nothing said"),
    ],
)  # fmt: skip
def test_init_failing_because_the_repository_is_there_lets_the_push_go_on(stderr, expected):
    assert remote.made_already(stderr) is expected
