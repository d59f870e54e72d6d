"""Which scheduled backups to keep: the newest of each of the last N hours, days and ISO weeks that have one.

A pure function over backup times (UTC), unit-tested as tables. A backup kept by any of the three rules is kept;
the newest is always kept. Backups taken by hand and safety backups never reach it (`db.backup --scheduled` marks
its backups `scheduled`, and only those are pruned by it). Then the binlog copies no remaining backup needs for a
restore to a point (older than the oldest one's binlog position on its server) go too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lifecycle.backup import Database
from lifecycle.backup_file import manifest_path, read_manifests
from lifecycle.binlog import FOLDER, SIDECAR, sequence_number
from lifecycle.pitr import read_copies

SCHEDULED = "scheduled"


def _newest_per(times: Sequence[datetime], bucket: Callable[[datetime], Hashable], count: int) -> set[datetime]:
    """The newest time in each of the `count` newest buckets that hold one."""
    kept: dict[Hashable, datetime] = {}
    for moment in sorted(times, reverse=True):
        key = bucket(moment)
        if key not in kept:
            if len(kept) == count:
                break
            kept[key] = moment
    return set(kept.values())


def to_keep(times: Iterable[datetime], *, hourly: int, daily: int, weekly: int) -> set[datetime]:
    """The backup times the hourly, daily and weekly counts keep (buckets in UTC)."""
    moments = [moment.astimezone(UTC) for moment in times]
    if not moments:
        return set()
    kept = {max(moments)}
    kept |= _newest_per(moments, lambda m: (m.date(), m.hour), hourly)
    kept |= _newest_per(moments, lambda m: m.date(), daily)
    kept |= _newest_per(moments, lambda m: m.isocalendar()[:2], weekly)
    return {moment for moment in moments if moment in kept}


def to_prune(times: Iterable[datetime], *, hourly: int, daily: int, weekly: int) -> list[datetime]:
    """The rest, oldest first."""
    moments = [moment.astimezone(UTC) for moment in times]
    kept = to_keep(moments, hourly=hourly, daily=daily, weekly=weekly)
    return sorted(moment for moment in moments if moment not in kept)


def prune_scheduled(db: Database) -> list[Path]:
    """Delete this project's scheduled backups that BACKUP_HOURLY/DAILY/WEEKLY do not keep; return them."""
    counts = {name: db.settings.typed(f"BACKUP_{name.upper()}") for name in ("hourly", "daily", "weekly")}
    scheduled = {
        datetime.fromisoformat(manifest.created): path
        for path, manifest in (read_manifests(db.folder) if db.folder.is_dir() else [])
        if manifest and manifest.kind == SCHEDULED and manifest.project == db.settings.project_name
    }
    doomed = [scheduled[moment] for moment in to_prune(scheduled, **counts)]
    for path in doomed:
        db.say(
            f"prune scheduled backup {path.name} (BACKUP_HOURLY/DAILY/WEEKLY: {'/'.join(map(str, counts.values()))})"
        )
        manifest_path(path).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    prune_binlog_copies(db)
    return doomed


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def binlogs_to_prune(kept: Iterable[tuple[str, str]], copies: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """The binlog copies no kept backup needs, as (server identity, file), in order.

    `kept`: (server identity, binlog file) where each kept backup starts; `copies`: the copied files by server. A
    restore to any time after a backup replays from its file on, so a copy is needed when a kept backup of its server
    starts in that file or an earlier one of the same name stem. A file name without a sequence number is kept (never
    delete what is not understood); a server no kept backup comes from needs none of its copies."""
    starts: dict[tuple[str, str], int] = {}
    for origin, file in kept:
        if origin and (number := sequence_number(file)) is not None:
            starts[origin, _stem(file)] = min(number, starts.get((origin, _stem(file)), number))
    doomed = []
    for origin in sorted(copies):
        for name in sorted(copies[origin]):
            number, first = sequence_number(name), starts.get((origin, _stem(name)))
            if number is not None and (first is None or number < first):
                doomed.append((origin, name))
    return doomed


def prune_binlog_copies(db: Database) -> list[Path]:
    """Delete the binlog copies in BACKUP_DIR/binlogs that no backup left in BACKUP_DIR needs (of any project or
    kind: a shared folder loses nothing another checkout needs); return them."""
    folder = db.folder / FOLDER
    if not folder.is_dir():
        return []
    kept = [(manifest.binlog_origin, manifest.binlog_file) for _, manifest in read_manifests(db.folder) if manifest]
    copies = {server.name: list(read_copies(server)) for server in folder.iterdir() if server.is_dir()}
    doomed = [folder / origin / name for origin, name in binlogs_to_prune(kept, copies)]
    if doomed:
        db.say(f"prune {len(doomed)} binlog copies older than every kept backup ({', '.join(p.name for p in doomed)})")
    for path in doomed:
        path.with_name(path.name + SIDECAR).unlink(missing_ok=True)  # first: a copy without one is never read
        path.unlink(missing_ok=True)
    return doomed
