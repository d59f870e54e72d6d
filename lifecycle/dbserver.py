"""Which database server made the data volume, and the guard `up` runs before it starts another one.

`up` records "DB_IMAGE VERSION" in the volume once the database is healthy; before the next `up`, a DB_IMAGE of
another major version than the record starts the old server first to take a safety backup (unless --no-backup):
a new major version may upgrade the files in place, with no way back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lifecycle.commands import compose, dbclient
from lifecycle.errors import UserError
from lifecycle.runner import CommandFailed

if TYPE_CHECKING:  # a type only: the backup code loads when a task uses it
    from lifecycle.backup import Database


def leading_number(text: str) -> int | None:
    match = re.match(r"\D*?(\d+)", text)
    return int(match.group(1)) if match else None


def tag_of(image: str) -> str:
    """The tag of an image reference (`latest` when it names none): mysql:8.4 -> 8.4."""
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def server_change(recorded: str, new_image: str) -> str | None:
    """Why `up` must back up first: DB_IMAGE's major version differs from the one recorded in the volume.

    `recorded` is the volume's record, "IMAGE VERSION" (empty: a fresh volume, or one from before records)."""
    parts = recorded.split(maxsplit=1)
    if len(parts) < 2 or parts[0] == new_image:
        return None
    old_image, old_version = parts
    old_major, new_major = leading_number(old_version), leading_number(tag_of(new_image))
    if old_major is not None and old_major == new_major:
        return None
    return f"DB_IMAGE changed from {old_image} (server {old_version}) to {new_image}"


@dataclass
class ServerGuard:
    """The server record of the database's volume, around one `up`."""

    db: Database
    _seen: tuple[str, str] | None = None  # before `up`: the running db container's id and the volume's record

    def guard_server_change(self, *, no_backup: bool) -> None:
        """Before `up`: when DB_IMAGE's major version differs from the volume's record, back up with the old one."""
        if self.db.dry or not self.db.volume_exists():
            return
        db = self.db.container()
        running = db is not None and db.running
        new_image = self.db.settings["DB_IMAGE"]
        if running:
            reader = dbclient.read_marker(self.db.settings)
        else:
            reader = dbclient.read_marker_offline(self.db.volume, new_image)
        recorded = self.db._run(reader, capture=True, warn=True).strip()
        if running:
            self._seen = (db.id, recorded)
        reason = server_change(recorded, new_image)
        if reason is None:
            return
        if not no_backup and not running:
            old_image = recorded.split()[0]
            self.db.say(f"{reason}: starting the old server to back up first")
            env = {**self.db.settings.env, "DB_IMAGE": old_image}
            started = self.db.run(compose.start_db_argv(self.db.settings), env=env, warn=True)
            if not started.ok:
                raise UserError(f"could not start {old_image} to back up the data first; set DB_IMAGE back to it, "
                                "or add --no-backup to go on without a backup")  # fmt: skip
        self.db.safety_backup(f"because {reason}", skip=no_backup)

    def record_server(self) -> None:
        """Write "DB_IMAGE VERSION" into the data volume, for the next `up` to compare; unless the db container
        is the one that ran before `up` and the record already names DB_IMAGE (the same server: nothing new)."""
        if self.db.dry:
            return
        if self._seen is not None:
            seen_id, recorded = self._seen
            now = self.db.container()
            same_image = recorded.split(maxsplit=1)[:1] == [self.db.settings["DB_IMAGE"]]
            if now is not None and now.id == seen_id and same_image:
                return
        self.db.forget_container()
        try:
            version = self.db.query("SELECT VERSION()")[0][0]
            self.db._run(dbclient.write_marker(self.db.settings, f"{self.db.settings['DB_IMAGE']} {version}"))
        except (UserError, CommandFailed, IndexError) as error:  # the stack is up; only the next check is weaker
            self.db.say(f"warning: could not record the database server in its volume: {error}")
