"""The app database (db.*): backup, restore (to a backup or a point in time), reset, drill, list, shell."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Exit, task

from lifecycle.cli.tasks.common import NO_BACKUP_HELP, local, user_errors
from lifecycle.confirm import terminal_prompt
from lifecycle.errors import UserError
from lifecycle.lazy import lazy_module
from lifecycle.stages import Stage

SWARM_HELP = ("The swarm stack's database (invoke deploy), through its db task on this node. Default: off (compose's "
              "db service).")  # fmt: skip

# Loaded on first use: a task imports only what it runs (`invoke build` none of these).
drill = lazy_module("lifecycle.drill")
physical_backups = lazy_module("lifecycle.physical")
pitr = lazy_module("lifecycle.pitr")
retention = lazy_module("lifecycle.retention")
offsite = lazy_module("lifecycle.remote")
restore = lazy_module("lifecycle.restore")


@task(
    name="backup",
    help={"binlogs": "Only copy the closed binary logs (after FLUSH BINARY LOGS) into BACKUP_DIR/binlogs, no dump; "
          "every full backup copies them too. Default: off (a full backup).",
          "physical": "A physical backup (.mbstream.gz) with mariadb-backup: the whole server's data directory, "
          "faster than a dump for a large database; proved by a prepare before it gets its name. MariaDB images "
          "only. Default: off (a logical dump).",
          "scheduled": "Mark the backup `scheduled` and prune the scheduled ones BACKUP_HOURLY/DAILY/WEEKLY do not "
          "keep (for cron). Default: off (a backup by hand, never pruned).",
          "swarm": SWARM_HELP},
)  # fmt: skip
@user_errors
def db_backup(c, binlogs=False, scheduled=False, physical=False, swarm=False):
    """Back up the running database into BACKUP_DIR: a streamed, consistent dump (.sql.gz) and its manifest."""
    database = local(c).database(on_stack=swarm)
    if physical:
        if binlogs or scheduled:
            raise UserError("--physical takes no --binlogs or --scheduled; nothing was done")
        path = physical_backups.Physical(database).backup()
        if path is not None:
            offsite.Remote(database).push(path)  # when BACKUP_REMOTE is set
    elif binlogs:
        if not database.dry:
            database.require_running()
        pitr.PointInTime(database).copy_binlogs()
    else:
        path = database.backup(retention.SCHEDULED, "schedule") if scheduled else database.backup()
        if path is not None:
            if scheduled:
                retention.prune_scheduled(database)
            offsite.Remote(database).push(path)  # when BACKUP_REMOTE is set


@task(
    name="restore",
    help={
        "file": "The backup (.sql.gz, or a physical .mbstream.gz, with its .json manifest next to it); invoke db.list "
        "shows them. With --to: the "
        "time to restore to.",
        "to": "FILE is a time (ISO 8601 with its zone: invoke db.restore --to 2026-12-03T14:05:00Z): restore the "
        "database as it was then, from the last full backup before it and the binary log up to it. Default: off.",
        "yes": "Replace the database without asking for the project name. Default: off (asks; refuses without a "
        "terminal).",
        "other_database": "Restore a backup of another database name into this one. Default: off (refused).",
        "no_backup": NO_BACKUP_HELP,
        "no_migrate": "Leave the migrations the backup lacks unapplied (/health answers 503 until they are); the "
        "output says what to run. Default: off (applied with the running app's image).",
        "swarm": SWARM_HELP,
    },
)
@user_errors
def db_restore(c, file, to=False, yes=False, other_database=False, no_backup=False, no_migrate=False, swarm=False):
    """Verify a backup, load it into a scratch database, swap it in atomically, apply the migrations it lacks."""
    database = local(c).database(on_stack=swarm)
    if to:  # a flag: invoke has no optional positional argument, so the time takes FILE's place
        pitr.PointInTime(database).restore_to(file, yes=yes, ask=terminal_prompt(), no_backup=no_backup,
                                              no_migrate=no_migrate)  # fmt: skip
        return
    path = Path(file)
    if not path.exists() and database.settings["BACKUP_REMOTE"] and not database.dry:
        path = offsite.Remote(database).fetch(path.name)  # decrypted and verified before anything changes
    restore.Restore(database).restore(
        path, yes=yes, ask=terminal_prompt(), other_database=other_database, no_backup=no_backup,
        no_migrate=no_migrate,
    )  # fmt: skip


@task(
    name="reset",
    help={
        "yes": "Reset without asking for the project name. Default: off (asks; refuses without a terminal).",
        "load": "A fixture to load afterwards (manage.py loaddata, path as the app container sees it). Default: none.",
        "stage": "The stage whose image migrates. Default: the running app service, else dev.",
        "no_backup": NO_BACKUP_HELP,
    },
)
@user_errors
def db_reset(c, yes=False, load=None, stage=None, no_backup=False):
    """Drop and recreate the database, migrate it and optionally load a fixture; a safety backup first."""
    target = Stage.parse(stage) if stage else None
    local(c).database().reset(yes=yes, ask=terminal_prompt(), stage=target, fixture=load, no_backup=no_backup)


@task(
    name="drill",
    help={"remote": "Drill the newest backup in BACKUP_REMOTE (fetched, decrypted and verified first). Default: off "
          "(the newest local one).",
          "swarm": "migrate --check with the release the swarm stack runs. Default: off (the checkout's prod image)."},
)  # fmt: skip
@user_errors
def db_drill(c, remote=False, swarm=False):
    """Restore the newest backup into a throwaway database server, check its counts and migrate --check; time it."""
    database = local(c).database(on_stack=swarm)
    path = offsite.Remote(database).newest() if remote else None
    line = drill.Drill(database).run(path)
    if line:
        print(line)


@task(name="list", help={"remote": "List this project's backups in BACKUP_REMOTE instead. Default: off (local)."})
@user_errors
def db_list(c, remote=False):
    """List the backups: size, age, kind (manual or automatic), tables, rows, server and migrations."""
    if remote:
        print("\n".join(offsite.Remote(local(c).database()).list()))
        return
    print("\n".join(local(c, engine=False).database().list()))


@task(name="shell", help={"root": "Connect as root instead of the app user. Default: off."})
@user_errors
def db_shell(c, root=False):
    """A SQL prompt in the running db service, as the app user on its database (root only with --root); without a
    terminal it runs the SQL piped in (echo 'SELECT 1' | invoke db.shell) and exits with the client's status."""
    status = local(c).db_shell(root=root)
    if status:
        raise Exit(code=status)


db_tasks = Collection("db", db_backup, db_restore, db_drill, db_reset, db_list, db_shell)
