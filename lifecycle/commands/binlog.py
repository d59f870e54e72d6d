"""The binary log's argv: the db server's options, the dump's position options, and the decoder, identity and
file commands run in the db container (lifecycle.binlog holds the scanners and the point-in-time decisions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from lifecycle.commands import dbclient
from lifecycle.commands.dbclient import DbTools
from lifecycle.settings import Settings

# The server's identity, made once in its data volume: MariaDB has no server_uuid, and two servers (two volumes,
# two machines) that both run with server id 1 must never have their binlogs mixed.
IDENTITY_FILE = "/var/lib/mysql/lifecycle-server-uuid"
IDENTITY = 'f="$1"; [ -s "$f" ] || cat /proc/sys/kernel/random/uuid > "$f" || exit 1; cat "$f"'
DECODER = {"mariadb-dump": "mariadb-binlog", "mysqldump": "mysqlbinlog"}


# ------------------------------------------------------------------------------------------- server options
def server_options(server_id: str, retention_seconds: str) -> list[str]:
    """The db server's binary log: what compose.yaml and stack.db.yaml pass as the service's command."""
    return [
        "--log-bin=binlog",
        f"--server-id={server_id}",
        "--binlog-format=ROW",
        f"--binlog-expire-logs-seconds={retention_seconds}",
    ]


# ----------------------------------------------------------------------------------------------- commands
def dump_options(tools: DbTools) -> list[str]:
    """What a dump adds when the server keeps a binlog: its position as a comment (never a statement a restore
    would run), and the GTID state, also as a comment."""
    if tools.dump == "mysqldump":
        return ["--source-data=2", "--set-gtid-purged=COMMENTED"]
    return ["--master-data=2", "--gtid"]


def decoder(tools: DbTools) -> str:
    return DECODER.get(tools.dump, "mariadb-binlog")


def identity(settings: Settings, container: str = "") -> list[str]:
    """Print the server's identity (made on first use) from its data volume (`docker exec` on `container` if given)."""
    return dbclient._exec(settings, IDENTITY, [IDENTITY_FILE], container=container)


def read_file(settings: Settings, path: str, container: str = "") -> list[str]:
    """One binlog file from the db container to stdout (streamed by the caller into a private copy)."""
    return dbclient._exec(settings, 'exec cat -- "$1"', [path], container=container)


def decode(
    settings: Settings,
    tools: DbTools,
    files: Sequence[str],
    *,
    database: str,
    into: str,
    stop: datetime,
    start_position: int | None,
) -> list[str]:
    """The decoder in the db container reading the binlog files (paths in the container) in order: the events of
    `database` only, renamed to `into`, from start_position in the first file, up to (not including) `stop`;
    checksums verified; `SET sql_log_bin=0` first, so the replay is not binlogged again.

    The decoder reads --stop-datetime in its own time zone: it runs with TZ=UTC and gets the time in UTC."""
    options = [
        f"--database={database}",
        f"--rewrite-db={database}->{into}",
        f"--stop-datetime={stop.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        "--disable-log-bin",
        "--verify-binlog-checksum",
        *([f"--start-position={start_position}"] if start_position else []),
        *(["--skip-gtids"] if tools.dump == "mysqldump" else []),
    ]
    argv = [decoder(tools), *options, *files]
    return dbclient._exec(settings, 'p="$1"; shift; exec "$p" "$@"', argv, env=["TZ=UTC"], container=tools.container)


def put_file(settings: Settings, path: str, container: str = "") -> list[str]:
    """Write stdin to `path` in the db container (its folder made private first)."""
    return dbclient._exec(settings, 'umask 077; mkdir -p "${1%/*}" && exec cat > "$1"', [path], container=container,
                          stdin=True)  # fmt: skip


def remove_folder(settings: Settings, path: str, container: str = "") -> list[str]:
    return dbclient._exec(settings, 'rm -rf -- "$1"', [path], container=container)


def replay(settings: Settings, tools: DbTools) -> list[str]:
    """The client as root reading the decoded events on stdin (the decoder's DELIMITER lines need a client)."""
    argv = [tools.client, "--default-character-set=utf8mb4"]
    return dbclient._exec(settings, dbclient.AS_ROOT, argv, container=tools.container, stdin=True)


# ---------------------------------------------------------------------------------------- the dump's position
