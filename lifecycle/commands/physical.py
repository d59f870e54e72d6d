"""The one place that builds command lines for physical backups (lifecycle/physical.py): `mariadb-backup` in the db
container, and the throwaway containers that unpack, prepare and serve a copy and swap it into the data volume.

The backup runs as root in the db container through the dump's password script (the password travels in MYSQL_PWD
from the *_FILE secret, never on a command line). Its chatter goes to a log in the container; the last lines reach
stderr only when it fails. Nothing here runs anything.
"""

from __future__ import annotations

from lifecycle.commands import docker
from lifecycle.commands.dbclient import ROOT_PASSWORD

DATADIR = "/var/lib/mysql"
LIVE, NEW = "/live", "/new"  # where the swap mounts the data volume and the prepared copy
INCOMING, REPLACED = ".lifecycle-incoming", ".lifecycle-replaced"  # beside the data in the data volume
KEEP = "lifecycle-db-server.txt"  # the volume's server record (dbclient.MARKER) stays with the volume
# The program's name: mariadb-backup (MariaDB 10.5 and later), else its old name.
_PROGRAM = 'b="$(command -v mariadb-backup || command -v mariabackup)" || { echo "no mariadb-backup" >&2; exit 127; }; '
# Run "$@" with its stderr in a log; on failure show the log's end and keep the status.
_LOGGED = '"$@" 2>"$log" || { s=$?; tail -n 15 "$log" >&2; exit "$s"; }'
BACKUP = (
    ROOT_PASSWORD + _PROGRAM + 'log=/tmp/lifecycle-physical.log; set -- "$b" --backup --stream=mbstream '
    "--target-dir=/tmp --user=root; " + _LOGGED
)
# stdin: the mbstream; unpacked into the (empty) volume, then prepared: a consistent datadir.
UNPACK = (
    _PROGRAM + f"log=/tmp/lifecycle-prepare.log; cd {DATADIR} && set -- mbstream -x && {_LOGGED}; "
    f'set -- "$b" --prepare --target-dir={DATADIR}; {_LOGGED}'
)
# The binary log position the copy was taken at: file, position, GTID (tab-separated), empty when none was kept.
BINLOG_INFO = (
    f"cat {DATADIR}/mariadb_backup_binlog_info 2>/dev/null || cat {DATADIR}/xtrabackup_binlog_info 2>/dev/null || true"
)
# The swap's steps, each in a throwaway container with the data volume at LIVE and the prepared copy at NEW; the
# db service is stopped. `copy` leaves the data untouched (the slow part); `switch` moves the data into REPLACED
# and the copy into place (renames in one filesystem); `rollback` undoes a switch; `discard` drops a copy never
# switched in; `finish` drops what was replaced.
_ENTRIES = 'for f in "$1"/* "$1"/.[!.]*; do [ -e "$f" ] || continue; case "${f##*/}" in '
_MOVE = _ENTRIES + f'{INCOMING}|{REPLACED}|{KEEP}) ;; *) mv "$f" "$2"/ || exit 1;; esac; done'
SWAP_STEPS = {
    "copy": f'rm -rf "{LIVE}/{INCOMING}" && mkdir "{LIVE}/{INCOMING}" && cp -a "{NEW}/." "{LIVE}/{INCOMING}/"',
    "switch": f'set -- "{LIVE}" "{LIVE}/{REPLACED}"; rm -rf "$2" && mkdir "$2" && ( {_MOVE} ) && '
    f'set -- "{LIVE}/{INCOMING}" "{LIVE}" && ( {_MOVE} ) && rmdir "{LIVE}/{INCOMING}"',
    "rollback": f'set -- "{LIVE}" "{LIVE}/{INCOMING}"; mkdir -p "$2" && ( {_MOVE} ) && '
    f'set -- "{LIVE}/{REPLACED}" "{LIVE}" && ( {_MOVE} ) && rm -rf "{LIVE}/{REPLACED}" "{LIVE}/{INCOMING}"',
    "discard": f'rm -rf "{LIVE}/{INCOMING}"',
    "finish": f'rm -rf "{LIVE}/{REPLACED}" "{LIVE}/{INCOMING}"',
}


def backup_argv(container: str) -> list[str]:
    """`mariadb-backup --backup` of the running db container, the mbstream on stdout."""
    return docker.docker_argv("exec", container, "sh", "-c", BACKUP, "sh")


def volume_create_argv(volume: str, label: str) -> list[str]:
    return docker.docker_argv("volume", "create", "--label", label, volume)


def unpack_argv(image: str, volume: str) -> list[str]:
    """Unpack the mbstream on stdin into `volume` and prepare it, in a throwaway container of the db image (as its
    mysql user, so the files are the server's), with no network."""
    return docker.docker_argv(
        "run", "--rm", "-i", "--network", "none", "--user", "mysql", "--volume", f"{volume}:{DATADIR}",
        "--entrypoint", "sh", image, "-c", UNPACK, "sh",
    )  # fmt: skip


def serve_argv(image: str, volume: str, name: str, label: str) -> list[str]:
    """A throwaway server on a prepared copy: no network, no TCP, no accounts checked (only `docker exec` reaches it,
    and no secret is needed to count its rows)."""
    return docker.docker_argv(
        "run", "--detach", "--name", name, "--label", label, "--network", "none", "--user", "mysql",
        "--volume", f"{volume}:{DATADIR}", "--entrypoint", "mariadbd", image,
        "--skip-grant-tables", "--skip-networking", "--user=mysql",
    )  # fmt: skip


def ping_argv(name: str) -> list[str]:
    return docker.docker_argv("exec", name, "mariadb-admin", "--silent", "ping")


def query_argv(name: str, statement: str) -> list[str]:
    """SQL in the throwaway server (tab-separated rows without a header)."""
    return docker.docker_argv("exec", name, "mariadb", "--batch", "--skip-column-names", f"--execute={statement}")


def binlog_info_argv(name: str) -> list[str]:
    return docker.docker_argv("exec", name, "sh", "-c", BINLOG_INFO)


def remove_container_argv(name: str) -> list[str]:
    """Stop (cleanly: InnoDB shuts down) and remove a throwaway server; one that is gone is no error."""
    return docker.docker_argv("rm", "--force", "--volumes", name)


def stop_container_argv(name: str) -> list[str]:
    return docker.docker_argv("stop", "--time", "60", name)


def swap_argv(image: str, live_volume: str, new_volume: str, step: str) -> list[str]:
    """One of SWAP_STEPS, as root in a throwaway container of the db image with both volumes, no network."""
    return docker.docker_argv(
        "run", "--rm", "--network", "none", "--user", "0", "--volume", f"{live_volume}:{LIVE}",
        "--volume", f"{new_volume}:{NEW}:ro", "--entrypoint", "sh", image, "-c", SWAP_STEPS[step],
    )  # fmt: skip
