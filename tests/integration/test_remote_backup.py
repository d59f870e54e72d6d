"""Backups off the machine with the real engine and a real SSH server: Debian's openssh-server in a container this
module builds and starts on 127.0.0.1, restic (the offline restic image) pushing to it over SFTP.

Pushed encrypted, listed, fetched back and restored after the local copy is gone; a wrong key, an unreachable
target, a backup of another project and a tampered remote file are each one line, the local backup kept and the
rows unchanged. Only the db service runs (no app image is built).
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.checkout import REPO_ROOT, IsolatedCheckout
from tests.helpers.engine import docker, docker_container, free_port, unique_name, wait_for
from tests.helpers.tools import assert_one_line

pytestmark = pytest.mark.integration

AS_ROOT = 'MYSQL_PWD="$(cat "$MYSQL_ROOT_PASSWORD_FILE")"'
MARKER = "plaintext-marker-" + secrets.token_hex(8)  # a value in the database that must never reach the server
REPO = "/home/vault/repo"


def sql(checkout: IsolatedCheckout, statement: str) -> str:
    (container,) = checkout.containers("db")
    return docker("exec", container, "sh", "-c", f'{AS_ROOT} mariadb -uroot -N -B app -e "$1"', "sh", statement).stdout


def keypair(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def sftp(tmp_path_factory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("sftp")
    key, wrong = keypair(folder / "id"), keypair(folder / "wrong")
    password = folder / "restic-password"
    password.write_text(secrets.token_urlsafe(24))
    password.chmod(0o600)
    image = f"{unique_name('it-sshd')}:1"
    docker("build", "--quiet", "--build-arg", "ROOTFS_IMAGE=lifecycle/debian:trixie", "--tag", image,
           str(REPO_ROOT / "tests/integration/sshd"))  # fmt: skip
    port = free_port()
    try:
        with docker_container(image, "--publish", f"127.0.0.1:{port}:22", "--volume",
                              f"{key}.pub:/keys/authorized_keys:ro", prefix="it-sshd") as name:  # fmt: skip
            host_key = wait_for(
                lambda: docker("exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=False).stdout.strip(),
                60, "the SSH server's host key",
            )  # fmt: skip
            known = folder / "known_hosts"
            known.write_text(f"[127.0.0.1]:{port} {' '.join(host_key.split()[:2])}\n")
            login = ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes", "-p", str(port),
                     "vault@127.0.0.1", "true"]  # fmt: skip
            wait_for(lambda: subprocess.run(login, capture_output=True, check=False).returncode == 0, 60, "ssh login")
            yield {
                "container": name,
                "BACKUP_REMOTE": f"sftp://vault@127.0.0.1:{port}/{REPO}",
                "BACKUP_REMOTE_PASSWORD_FILE": str(password),
                "BACKUP_REMOTE_SSH_KEY_FILE": str(key),
                "BACKUP_REMOTE_KNOWN_HOSTS_FILE": str(known),
                "wrong_key": str(wrong),
            }
    finally:
        docker("image", "rm", "--force", image, check=False)


def remote_env(sftp: dict[str, str], **changes: str) -> dict[str, str]:
    names = ("BACKUP_REMOTE", "BACKUP_REMOTE_PASSWORD_FILE", "BACKUP_REMOTE_SSH_KEY_FILE",
             "BACKUP_REMOTE_KNOWN_HOSTS_FILE")  # fmt: skip
    return {**{name: sftp[name] for name in names}, **changes}


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


def ok(checkout: IsolatedCheckout, *args: str, env: dict[str, str]) -> str:
    done = checkout.invoke_combined(*args, env=env)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def test_a_backup_goes_off_the_machine_encrypted_and_restores_from_there(db_only, sftp):
    env = remote_env(sftp)
    output = ok(db_only, "db.backup", env=env)
    path = local_backups(db_only)[-1]
    assert f"remote: {path.name} pushed to" in output, output[-3000:]
    assert path.name in ok(db_only, "db.list", "--remote", env=env)
    on_server = docker("exec", sftp["container"], "grep", "-r", "-l", MARKER, REPO, check=False)
    assert on_server.returncode == 1 and on_server.stdout == ""  # nothing readable there: restic encrypted it
    for secret in (Path(sftp["BACKUP_REMOTE_PASSWORD_FILE"]).read_text(), "PRIVATE KEY"):
        assert secret not in output

    path.unlink()
    path.with_name(path.name.removesuffix(".sql.gz") + ".json").unlink()
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


def another_projects_backup(sftp: dict[str, str], tmp_path: Path) -> str:
    """A snapshot of project `someone-else`, pushed with restic as another checkout would."""
    name = "someone-else-20261203T140000000Z.sql.gz"
    (tmp_path / name).write_bytes(b"not ours")
    mounts = [flag for pair in ((sftp["BACKUP_REMOTE_PASSWORD_FILE"], "/p"), (sftp["BACKUP_REMOTE_SSH_KEY_FILE"], "/k"),
                                (sftp["BACKUP_REMOTE_KNOWN_HOSTS_FILE"], "/h"), (str(tmp_path), "/backups"))
              for flag in ("--volume", f"{pair[0]}:{pair[1]}:ro")]  # fmt: skip
    port = sftp["BACKUP_REMOTE"].split(":")[2].split("/")[0]
    docker("run", "--rm", "--network", "host", *mounts, "--env", "RESTIC_PASSWORD_FILE=/p", "lifecycle/restic:0.18",
           "--repo", f"sftp:vault@127.0.0.1:{REPO}", "--option",
           f"sftp.command=ssh -i /k -o UserKnownHostsFile=/h -o BatchMode=yes -p {port} vault@127.0.0.1 -s sftp",
           "backup", "--tag", "project=someone-else", "--tag", f"backup={name}", f"/backups/{name}")  # fmt: skip
    return name


@pytest.mark.parametrize("case", ["wrong-key", "wrong-password", "unreachable", "another-project", "tampered"])
def test_remote_failures_are_one_line_and_keep_the_local_backup_and_the_rows(db_only, sftp, case, tmp_path):
    before = sql(db_only, "CHECKSUM TABLE kept")
    backups_before = local_backups(db_only)
    if case in ("wrong-key", "wrong-password", "unreachable"):
        wrong_password = tmp_path / "wrong-password"
        wrong_password.write_text("not the repository's password")
        env = remote_env(sftp, **{
            "wrong-key": {"BACKUP_REMOTE_SSH_KEY_FILE": sftp["wrong_key"]},
            "wrong-password": {"BACKUP_REMOTE_PASSWORD_FILE": str(wrong_password)},
            "unreachable": {"BACKUP_REMOTE": f"sftp://vault@127.0.0.1:{free_port()}/{REPO}"},
        }[case])  # fmt: skip
        done = db_only.invoke_combined("db.backup", env=env)
        line = assert_one_line(done.stdout, "failed", "the local backup", "is kept")
        (new,) = set(local_backups(db_only)) - set(backups_before)
        assert new.name in line and new.is_file() and done.returncode != 0
    else:
        if case == "another-project":
            name, words = another_projects_backup(sftp, tmp_path), ["is a backup of project someone-else"]
        else:
            env = remote_env(sftp)
            ok(db_only, "db.backup", env=env)
            newest = local_backups(db_only)[-1]
            name, words = newest.name, ["failed", "nothing was restored"]
            newest.unlink()
            newest.with_name(newest.name.removesuffix(".sql.gz") + ".json").unlink()
            packs = docker("exec", sftp["container"], "find", f"{REPO}/data", "-type", "f").stdout.split()
            for pack in packs:  # one byte changed in every pack file
                docker("exec", sftp["container"], "sh", "-c",
                       'printf "\\377" | dd of="$1" bs=1 seek=40 conv=notrunc 2>/dev/null', "sh", pack)  # fmt: skip
        done = db_only.invoke_combined("db.restore", name, "--yes", env=remote_env(sftp))
        assert done.returncode != 0, done.stdout[-3000:]
        assert_one_line(done.stdout, *words)
    assert sql(db_only, "CHECKSUM TABLE kept") == before
    assert not list(db_only.backups.glob(".fetch-*"))
