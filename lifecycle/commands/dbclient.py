"""The one place that builds command lines for the SQL clients inside the `db` service.

The dump and client programs differ by image (`mariadb-dump`/`mariadb` on MariaDB, `mysqldump`/`mysql` on the
official mysql image): `choose_tools` picks them from what the container has. Passwords never reach a command
line: each command runs under `sh -c` that reads the container's own root (or app) password into MYSQL_PWD, which
the clients read: from the file MYSQL_ROOT_PASSWORD_FILE (MYSQL_PASSWORD_FILE) names, a compose secret, or from
MYSQL_ROOT_PASSWORD (MYSQL_PASSWORD) in a container made before the secrets were files. Nothing here runs anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lifecycle.commands import compose, docker
from lifecycle.errors import UserError
from lifecycle.settings import Settings

SERVICE = compose.DB_SERVICE
# Where the suite records which server initialised (or last ran on) the data volume.
MARKER = "/var/lib/mysql/lifecycle-db-server.txt"
DUMP_PROGRAMS = ("mariadb-dump", "mysqldump")  # preferred first: MariaDB 11 warns on its mysqldump alias
CLIENT_PROGRAMS = ("mariadb", "mysql")
# MYSQL_PWD from VAR_FILE's file, else from VAR (exported: the client that follows reads it).
_PASSWORD = (
    'if [ -n "${{{0}_FILE:-}}" ]; then MYSQL_PWD="$(cat "${0}_FILE")" || exit 1; '
    'else MYSQL_PWD="${{{0}:-}}"; fi; export MYSQL_PWD; '
)
ROOT_PASSWORD = _PASSWORD.format("MYSQL_ROOT_PASSWORD")
APP_PASSWORD = _PASSWORD.format("MYSQL_PASSWORD")
# The program comes first, then --user, then the caller's arguments (which may end in a database name).
AS_ROOT = ROOT_PASSWORD + 'p="$1"; shift; exec "$p" --user=root "$@"'
AS_APP = APP_PASSWORD + 'p="$1"; shift; exec "$p" --user="$MYSQL_USER" "$@" "$MYSQL_DATABASE"'
# One statement as the app's user on its database, with whichever client the image has (no probe first: a report
# that must stay fast, `invoke status`); tab-separated rows without a header.
APP_QUERY = APP_PASSWORD + (
    'c="$(command -v mariadb || command -v mysql)" || exit 1; '
    'exec "$c" --user="$MYSQL_USER" --batch --skip-column-names "--execute=$1" "$MYSQL_DATABASE"'
)
# The program, then the user; its password travels in LIFECYCLE_LOAD_PASSWORD, which `compose exec --env NAME`
# copies from the suite's environment (never a command line). The dump reaches the client through `cat`: docker exec
# hands stdin over in the small pieces it receives them in, and the client reads a local pipe faster.
AS_USER = 'p="$1"; u="$2"; shift 2; cat | MYSQL_PWD="$LIFECYCLE_LOAD_PASSWORD" "$p" --user="$u" "$@"'
# The dump as root, its output through `cat`: docker exec carries a program's output in the pieces it writes, and
# the dump programs write small ones (a 200 MB dump crossed in half the time with `cat` between). pipefail where
# the shell has it keeps the dump's exit status; the '-- Dump completed' check catches a failed dump anyway.
DUMP_AS_ROOT = (
    ROOT_PASSWORD + '(set -o pipefail) 2>/dev/null && set -o pipefail; p="$1"; shift; "$p" --user=root "$@" | cat'
)
LOAD_PASSWORD = "LIFECYCLE_LOAD_PASSWORD"
# The temporary account a restore loads the dump as: rights on the scratch database only (backup.restore).
RESTORE_USER = "lifecycle_restore"
# Prints the container's database name, then the path of every client program it has.
PROBE = 'printf "%s\\n" "$MYSQL_DATABASE"; for p in "$@"; do command -v "$p" || true; done'


@dataclass(frozen=True)
class DbTools:
    """The database name the db container serves, and the dump and client programs it has; with the container's
    id, commands run through `docker exec` on it (a fraction of `docker compose exec`'s start-up, which a backup
    or restore pays a dozen times), else through `docker compose exec` on the service."""

    database: str
    dump: str
    client: str
    container: str = ""


def choose_tools(probe_output: str, container: str = "") -> DbTools:
    """Decide from PROBE's output (database name, then found paths); the MariaDB names win when both exist."""
    lines = probe_output.splitlines()
    database = lines[0].strip() if lines else ""
    found = {line.strip().rsplit("/", 1)[-1] for line in lines[1:]}
    dump = next((name for name in DUMP_PROGRAMS if name in found), None)
    client = next((name for name in CLIENT_PROGRAMS if name in found), None)
    if not database:
        raise UserError("the db container has no MYSQL_DATABASE; set DB_NAME in .env and recreate it (invoke up)")
    if not dump or not client:
        raise UserError(
            f"the db container has no {' or '.join(DUMP_PROGRAMS)} / {' or '.join(CLIENT_PROGRAMS)}; "
            "use a DB_IMAGE with the official mysql image's interface"
        )
    return DbTools(database, dump, client, container)


def _exec(
    settings: Settings, script: str, argv: Sequence[str], *, tty: bool = False, env: Sequence[str] = (),
    container: str = "", stdin: bool = False,
) -> list[str]:  # fmt: skip
    """`sh -c script` in the db container: `docker exec` on its id when known (`-i` only for a command that reads
    stdin), else `docker compose exec` on the service."""
    env_flags = [flag for pair in env for flag in ("--env", pair)]
    command = ["sh", "-c", script, "sh", *argv]
    if container:
        attach = ["-i"] if stdin or tty else []
        return docker.docker_argv("exec", *attach, *(["-t"] if tty else []), *env_flags, container, *command)
    return compose.compose_argv(settings, "exec", *([] if tty else ["--no-TTY"]), *env_flags, SERVICE, *command)


def probe(settings: Settings, container: str = "") -> list[str]:
    return _exec(settings, PROBE, [*DUMP_PROGRAMS, *CLIENT_PROGRAMS], container=container)


def dump(settings: Settings, tools: DbTools, extra: Sequence[str] = ()) -> list[str]:
    """A consistent dump of the database to stdout: one snapshot (InnoDB), routines, triggers, events, utf8mb4.

    No CREATE DATABASE/USE lines, so it loads into whichever database the client names (the scratch one)."""
    options = [
        "--single-transaction",
        "--routines",
        "--triggers",
        "--events",
        "--default-character-set=utf8mb4",
        "--max-allowed-packet=1G",
        *extra,  # the binlog position (lifecycle.binlog.dump_options)
    ]
    return _exec(settings, DUMP_AS_ROOT, [tools.dump, *options, tools.database], container=tools.container)


def sql(settings: Settings, tools: DbTools, statement: str, database: str | None = None) -> list[str]:
    """One batch of SQL as root; tab-separated rows without a header on stdout."""
    args = ["--batch", "--skip-column-names", "--default-character-set=utf8mb4", f"--execute={statement}"]
    return _exec(settings, AS_ROOT, [tools.client, *args, *([database] if database else [])], container=tools.container)


def app_query(container: str, statement: str) -> list[str]:
    """One statement as the app's user in the db container `container` (compose's or a swarm task's)."""
    return docker.docker_argv("exec", container, "sh", "-c", APP_QUERY, "sh", statement)


def load(settings: Settings, tools: DbTools, database: str, user: str = RESTORE_USER) -> list[str]:
    """The client as `user` (password in LOAD_PASSWORD) reading a dump on stdin into `database`.

    --binary-mode: no client commands (`\\!`, `system`, `source`) besides DELIMITER, whatever the dump says."""
    args = ["--default-character-set=utf8mb4", "--max-allowed-packet=1G", "--binary-mode", database]
    return _exec(settings, AS_USER, [tools.client, user, *args], env=[LOAD_PASSWORD], container=tools.container,
                 stdin=True)  # fmt: skip


def script(settings: Settings, tools: DbTools) -> list[str]:
    """The client as root reading SQL on stdin: for statements that hold a secret (never on a command line)."""
    argv = [tools.client, "--batch", "--default-character-set=utf8mb4"]
    return _exec(settings, AS_ROOT, argv, container=tools.container, stdin=True)


def shell(settings: Settings, tools: DbTools, *, root: bool, tty: bool) -> list[str]:
    """An interactive SQL prompt: the app user on its database, or root when asked."""
    if root:
        return _exec(settings, AS_ROOT, [tools.client, "--default-character-set=utf8mb4"], tty=tty)
    return _exec(settings, AS_APP, [tools.client, "--default-character-set=utf8mb4"], tty=tty)


def read_marker(settings: Settings) -> list[str]:
    return _exec(settings, 'cat "$1" 2>/dev/null || true', [MARKER])


def write_marker(settings: Settings, content: str) -> list[str]:
    """Record `content` (image and server version) in the data volume; it travels in the environment."""
    script = 'printf "%s\\n" "$LIFECYCLE_DB_SERVER" > "$1"'
    return _exec(settings, script, [MARKER], env=[f"LIFECYCLE_DB_SERVER={content}"])


def read_marker_offline(volume: str, image: str) -> list[str]:
    """Read the record from a volume with no server running: a throwaway container of `image`, no network."""
    return docker.docker_argv(
        "run", "--rm", "--network", "none", "--volume", f"{volume}:/var/lib/mysql:ro",
        "--entrypoint", "sh", image, "-c", 'cat "$1" 2>/dev/null || true', "sh", MARKER,
    )  # fmt: skip


def plain_dump_to_file(settings: Settings, tools: DbTools, path: str) -> list[str]:
    """The plain tools' baseline for the benchmark: `dump | gzip` into a file inside the container."""
    script = ROOT_PASSWORD + 'p="$1"; f="$2"; shift 2; "$p" --user=root "$@" | gzip > "$f"'
    return _exec(settings, script, [tools.dump, path, "--single-transaction", tools.database])


def plain_load_from_file(settings: Settings, tools: DbTools, path: str, database: str) -> list[str]:
    """The plain tools' baseline for the benchmark: `gunzip | client` from a file inside the container."""
    script = ROOT_PASSWORD + 'p="$1"; f="$2"; shift 2; gunzip -c "$f" | "$p" --user=root "$@"'
    return _exec(settings, script, [tools.client, path, database])


def remove_file(settings: Settings, path: str) -> list[str]:
    return _exec(settings, 'rm -f "$1"', [path])
