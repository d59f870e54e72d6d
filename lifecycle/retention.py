"""Which scheduled backups to keep: the newest of each of the last N hours, days and ISO weeks that have one.

A pure function over backup times (UTC), unit-tested as tables. A backup kept by any of the three rules is kept;
the newest is always kept. Backups taken by hand and safety backups never reach it (`db.backup --scheduled` marks
its backups `scheduled`, and only those are pruned by it).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lifecycle.backup import Database
from lifecycle.backup_file import manifest_path, read_manifests

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
    return doomed
