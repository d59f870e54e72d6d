"""Backups off the machine with the real engine and real servers, each started by this module on 127.0.0.1: Debian's
openssh-server in a container (SFTP), moto's S3 server in a process (S3 over https with a certificate of the test's
own CA, IAM authentication on); restic (the offline restic image) pushing to them.

For each target: pushed encrypted, listed, fetched back and restored after the local copy is gone; wrong
credentials, an unreachable target, a backup of another project and a tampered remote file are each one line, the
local backup kept and the rows unchanged. A full disk on the SFTP server (a small tmpfs) is one line naming it, the
local backup kept, nothing half-written listed. Only the db service runs (no app image is built).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifecycle.backup_file import manifest_path
from lifecycle.commands.restic import restic
from lifecycle.remote import parse_target
from lifecycle.settings import load_settings
from tests.helpers.checkout import REPO_ROOT, IsolatedCheckout
from tests.helpers.engine import docker, docker_container, free_port, unique_name, wait_for
from tests.helpers.tools import assert_one_line

pytestmark = pytest.mark.integration

AS_ROOT = 'MYSQL_PWD="$(cat "$MYSQL_ROOT_PASSWORD_FILE")"'
MARKER = "plaintext-marker-" + secrets.token_hex(8)  # a value in the database that must never reach the server
REPO = "/home/vault/repo"
SMALL = "/srv/small"  # a 256 KiB tmpfs in the SSH server: the full disk
SECRET_FILES = ("BACKUP_REMOTE_PASSWORD_FILE", "BACKUP_REMOTE_SSH_KEY_FILE", "BACKUP_REMOTE_KNOWN_HOSTS_FILE",
                "BACKUP_REMOTE_S3_CREDENTIALS_FILE")  # fmt: skip


@dataclass
class Server:
    """A running backup target: the settings that reach it, the ones that cannot, and what a test does to it."""

    env: dict[str, str]
    wrong_credentials: dict[str, str]
    unreachable: str
    holds: Callable[[str], bool]  # whether any file the server stores holds this text
    tamper: Callable[[], None]  # one byte changed in every pack file
    container: str = ""


def sql(checkout: IsolatedCheckout, statement: str) -> str:
    (container,) = checkout.containers("db")
    return docker("exec", container, "sh", "-c", f'{AS_ROOT} mariadb -uroot -N -B app -e "$1"', "sh", statement).stdout


def keypair(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def private_file(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def password(tmp_path_factory) -> str:
    return private_file(tmp_path_factory.mktemp("restic") / "password", secrets.token_urlsafe(24))


@pytest.fixture(scope="module")
def sftp(tmp_path_factory, password) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("sftp")
    key, wrong = keypair(folder / "id"), keypair(folder / "wrong")
    image = f"{unique_name('it-sshd')}:1"
    docker("build", "--quiet", "--build-arg", "ROOTFS_IMAGE=lifecycle/debian:trixie", "--tag", image,
           str(REPO_ROOT / "tests/integration/sshd"))  # fmt: skip
    port = free_port()
    try:
        with docker_container(image, "--publish", f"127.0.0.1:{port}:22", "--volume",
                              f"{key}.pub:/keys/authorized_keys:ro", "--tmpfs",
                              f"{SMALL}:size=256k,uid=1000,gid=1000,mode=0700", prefix="it-sshd") as name:  # fmt: skip
            host_key = wait_for(
                lambda: docker("exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=False).stdout.strip(),
                60, "the SSH server's host key",
            )  # fmt: skip
            known = folder / "known_hosts"
            known.write_text(f"[127.0.0.1]:{port} {' '.join(host_key.split()[:2])}\n")
            login = ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes", "-p", str(port),
                     "vault@127.0.0.1", "true"]  # fmt: skip
            wait_for(lambda: subprocess.run(login, capture_output=True, check=False).returncode == 0, 60, "ssh login")

            def holds(text: str) -> bool:
                found = docker("exec", name, "grep", "-r", "-l", "-F", text, REPO, check=False)
                assert found.returncode in (0, 1), found.stderr
                return found.returncode == 0

            def tamper() -> None:
                for pack in docker("exec", name, "find", f"{REPO}/data", "-type", "f").stdout.split():
                    flip = 'printf "\\377" | dd of="$1" bs=1 seek=40 conv=notrunc 2>/dev/null'
                    docker("exec", name, "sh", "-c", flip, "sh", pack)

            yield Server(
                env={"BACKUP_REMOTE": f"sftp://vault@127.0.0.1:{port}/{REPO}", "BACKUP_REMOTE_PASSWORD_FILE": password,
                     "BACKUP_REMOTE_SSH_KEY_FILE": str(key), "BACKUP_REMOTE_KNOWN_HOSTS_FILE": str(known)},
                wrong_credentials={"BACKUP_REMOTE_SSH_KEY_FILE": str(wrong)},
                unreachable=f"sftp://vault@127.0.0.1:{free_port()}/{REPO}",
                holds=holds, tamper=tamper, container=name,
            )  # fmt: skip
    finally:
        docker("image", "rm", "--force", image, check=False)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA of the test's own and a certificate it signed for 127.0.0.1: (CA, certificate, key)."""
    ca, certificate, key = folder / "ca.crt", folder / "server.crt", folder / "server.key"
    (folder / "san").write_text("subjectAltName=IP:127.0.0.1\n")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["req", "-x509", *new_key, "-keyout", str(folder / "ca.key"), "-out", str(ca), "-days", "1", "-subj", "/CN=it"],
        ["req", *new_key, "-keyout", str(key), "-out", str(folder / "server.csr"), "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", str(folder / "server.csr"), "-CA", str(ca), "-CAkey", str(folder / "ca.key"),
         "-CAcreateserial", "-out", str(certificate), "-days", "1", "-extfile", str(folder / "san")],
    ):  # fmt: skip
        subprocess.run(["openssl", *argv], check=True, capture_output=True)
    return ca, certificate, key


@pytest.fixture(scope="module")
def s3(tmp_path_factory, password) -> Iterator[Server]:
    """moto's S3 server with IAM authentication: its first three requests (unauthenticated) make the user `backup`
    allowed s3:* and its key; every request after them must be signed with that key."""
    import boto3  # the e2e session's tools (moto's dependency)

    folder, port = tmp_path_factory.mktemp("s3"), free_port()
    ca, certificate, key_file = certificates(folder)
    endpoint = f"https://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port), "-c",
         str(certificate), "-k", str(key_file)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: listening(port), 60, "moto's S3 server")
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup",
                           aws_secret_access_key="setup", verify=str(ca))  # fmt: skip
        iam.create_user(UserName="backup")
        iam.put_user_policy(
            UserName="backup",
            PolicyName="s3",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName="backup")["AccessKey"]
        credentials = "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n"
        bucket = boto3.resource("s3", endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                verify=str(ca)).Bucket("backups")  # fmt: skip

        def tamper() -> None:
            for item in bucket.objects.filter(Prefix="shop/data/"):
                data = bytearray(item.get()["Body"].read())
                data[40] ^= 0xFF
                item.put(Body=bytes(data))  # an object rewritten whole: what S3 allows

        yield Server(
            env={"BACKUP_REMOTE": f"s3:{endpoint}/backups/shop", "BACKUP_REMOTE_PASSWORD_FILE": password,
                 "BACKUP_REMOTE_CA_FILE": str(ca),
                 "BACKUP_REMOTE_S3_CREDENTIALS_FILE": private_file(
                     folder / "credentials", credentials.format(key["AccessKeyId"], key["SecretAccessKey"]))},
            wrong_credentials={"BACKUP_REMOTE_S3_CREDENTIALS_FILE": private_file(
                folder / "wrong", credentials.format(key["AccessKeyId"], "not-the-secret-access-key"))},
            unreachable=f"s3:https://127.0.0.1:{free_port()}/backups/shop",
            holds=lambda text: any(text.encode() in item.get()["Body"].read() for item in bucket.objects.all()),
            tamper=tamper,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module", params=["sftp", "s3"])
def remote(request) -> Server:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def db_only() -> Iterator[IsolatedCheckout]:
    checkout = IsolatedCheckout.new()
    try:
        done = checkout.invoke_combined("compose", "up --detach --wait db")
        assert done.returncode == 0, done.stdout[-3000:]
        sql(checkout, f"CREATE TABLE kept (id INT PRIMARY KEY, v VARCHAR(60)); INSERT INTO kept VALUES (1, '{MARKER}')")
        yield checkout
    finally:
        checkout.remove()


def local_backups(checkout: IsolatedCheckout) -> list[Path]:
    return sorted(checkout.backups.glob("*.sql.gz")) if checkout.backups.is_dir() else []


def forget_locally(path: Path) -> None:
    path.unlink()
    path.with_name(path.name.removesuffix(".sql.gz") + ".json").unlink()


def ok(checkout: IsolatedCheckout, *args: str, env: dict[str, str]) -> str:
    done = checkout.invoke_combined(*args, env=env)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def test_a_backup_goes_off_the_machine_encrypted_and_restores_from_there(db_only, remote):
    env = remote.env
    output = ok(db_only, "db.backup", env=env)
    path = local_backups(db_only)[-1]
    assert f"remote: {path.name} pushed to" in output, output[-3000:]
    assert path.name in ok(db_only, "db.list", "--remote", env=env)
    assert not remote.holds(MARKER)  # nothing readable there: restic encrypted it
    secrets_read = [Path(env[name]).read_text() for name in SECRET_FILES if name in env]
    assert not any(secret.strip() in output for secret in secrets_read) and "PRIVATE KEY" not in output

    forget_locally(path)
    sql(db_only, "DELETE FROM kept")
    output = ok(db_only, "db.restore", path.name, "--yes", env=env)
    assert f"remote: fetched {path.name}" in output and path.is_file(), output[-3000:]
    assert sql(db_only, "SELECT v FROM kept").split() == [MARKER]

    # A drill of the newest remote backup: fetched again, restored into a throwaway server; the stack untouched.
    path.unlink()
    (db_before,) = db_only.containers("db")
    output = ok(db_only, "db.drill", "--remote", env=env)
    assert_one_line(output, "drill PASSED", path.name, "rows as its manifest says", "migrate --check skipped")
    assert db_only.containers("db") == [db_before] and sql(db_only, "SELECT v FROM kept").split() == [MARKER]


def test_a_physical_backup_goes_off_the_machine_too_and_restores_from_there(db_only, sftp):
    """Every new backup is pushed, a physical one (mariadb-backup) too: listed, fetched back by name, its hash
    checked, then prepared and swapped in as a local one."""
    output = ok(db_only, "db.backup", "--physical", env=sftp.env)
    path = sorted(db_only.backups.glob("*.mbstream.gz"))[-1]
    assert f"remote: {path.name} pushed to" in output, output[-3000:]
    assert path.name in ok(db_only, "db.list", "--remote", env=sftp.env)
    assert not sftp.holds(MARKER)
    manifest_path(path).unlink()
    path.unlink()
    sql(db_only, "DELETE FROM kept")
    output = ok(db_only, "db.restore", path.name, "--yes", "--no-backup", env=sftp.env)
    assert f"remote: fetched {path.name}" in output and path.is_file(), output[-3000:]
    assert sql(db_only, "SELECT v FROM kept").split() == [MARKER]


def push_as_another_project(remote: Server, tmp_path: Path) -> str:
    """A snapshot of project `someone-else` in the same repository, pushed with restic as its checkout would."""
    name = "someone-else-20261203T140000000Z.sql.gz"
    (tmp_path / name).write_bytes(b"not ours")
    settings, target = load_settings(root=tmp_path, environ=remote.env), parse_target(remote.env["BACKUP_REMOTE"])
    subprocess.run(restic(settings, target, tmp_path, "init"), capture_output=True, timeout=120)  # made, or there
    argv = restic(settings, target, tmp_path, "backup", "--tag", "project=someone-else", "--tag", f"backup={name}",
                  f"/backups/{name}")  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    return name


@pytest.mark.parametrize("case", ["wrong-credentials", "wrong-password", "unreachable", "another-project", "tampered"])
def test_remote_failures_are_one_line_and_keep_the_local_backup_and_the_rows(db_only, remote, case, tmp_path):
    before = sql(db_only, "CHECKSUM TABLE kept")
    backups_before = local_backups(db_only)
    if case in ("wrong-credentials", "wrong-password", "unreachable"):
        wrong_password = private_file(tmp_path / "wrong-password", "not the repository's password")
        env = {**remote.env, "BACKUP_REMOTE_TIMEOUT": "15", **{  # restic would retry S3 for 15 min
            "wrong-credentials": remote.wrong_credentials,
            "wrong-password": {"BACKUP_REMOTE_PASSWORD_FILE": wrong_password},
            "unreachable": {"BACKUP_REMOTE": remote.unreachable},
        }[case]}  # fmt: skip
        done = db_only.invoke_combined("db.backup", env=env)
        line = assert_one_line(done.stdout, "failed", "the local backup", "is kept")
        (new,) = set(local_backups(db_only)) - set(backups_before)
        assert new.name in line and new.is_file() and done.returncode != 0
        if case == "wrong-password":  # an encryption key that does not match: restoring with it is refused too
            done = db_only.invoke_combined("db.restore", "remote-only.sql.gz", "--yes", env=env)
            assert done.returncode != 0 and "wrong password" in assert_one_line(done.stdout, "failed"), done.stdout
    else:
        if case == "another-project":
            name, words = push_as_another_project(remote, tmp_path), ["is a backup of project someone-else"]
        else:
            ok(db_only, "db.backup", env=remote.env)
            newest = local_backups(db_only)[-1]
            name, words = newest.name, ["failed", "nothing was restored"]
            forget_locally(newest)
            remote.tamper()
        done = db_only.invoke_combined("db.restore", name, "--yes", env=remote.env)
        assert done.returncode != 0, done.stdout[-3000:]
        assert_one_line(done.stdout, *words)
    assert sql(db_only, "CHECKSUM TABLE kept") == before
    assert not list(db_only.backups.glob(".fetch-*"))


def test_a_full_disk_on_the_target_is_one_line_and_nothing_half_written_is_listed(db_only, sftp):
    env = {**sftp.env, "BACKUP_REMOTE": sftp.env["BACKUP_REMOTE"].replace(REPO, f"{SMALL}/repo")}
    ok(db_only, "db.backup", env=env)  # the repository made, one backup in it
    docker("exec", sftp.container, "sh", "-c", f"dd if=/dev/zero of={SMALL}/filler bs=4k 2>/dev/null; df {SMALL}")
    before = local_backups(db_only)
    sql(db_only, f"INSERT INTO kept VALUES (2, '{secrets.token_hex(20)}')")
    try:
        done = db_only.invoke_combined("db.backup", env=env)
        line = assert_one_line(done.stdout, "failed", "no space left on device", "the local backup", "is kept")
        (new,) = set(local_backups(db_only)) - set(before)
        assert done.returncode != 0 and new.name in line and new.is_file()
    finally:
        docker("exec", sftp.container, "rm", "-f", f"{SMALL}/filler")
        sql(db_only, "DELETE FROM kept WHERE id = 2")
    listed = ok(db_only, "db.list", "--remote", env=env)
    assert before[-1].name in listed and new.name not in listed, listed
