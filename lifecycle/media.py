"""User uploads: their own volume, carried by db.backup/db.restore with the database.

With MEDIA=true (`media = true` in [tool.lifecycle], which `invoke adopt` writes when the project sets MEDIA_ROOT or
MEDIA_URL) the app services mount the volume `media` at MOUNT (compose: docker/compose.media.yaml; the swarm stack:
docker/stack.media.yaml) and MEDIA_ROOT is MOUNT/current. A project without media has no media volume.

A backup `<name>.sql.gz` then has `<name>.media.tar` beside it (the live set's files, packed in a throwaway container
that mounts the volume read-only) and its manifest's `media` entry: the tar's name, size and sha256 and every file's
sha256. `verify` checks all of it before anything is touched; a restore unpacks into a new set, compares every
file's sha256 with the manifest, and swaps it in with one rename (lifecycle/media_volume.py), right after the
database's own swap. The builders return argv; `Media` sequences them through the Runner and the streaming edge.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle import private
from lifecycle.commands import docker
from lifecycle.commands.media import MOUNT, helper_argv
from lifecycle.context import Context, UsesContext
from lifecycle.errors import UserError
from lifecycle.runner import CHUNK
from lifecycle.settings import Settings

MEDIA_ROOT = f"{MOUNT}/current"
COMPOSE_FILE = "docker/compose.media.yaml"
STACK_FILE = "docker/stack.media.yaml"
VOLUME = "media"  # the volume's name in compose.media.yaml and stack.media.yaml (PROJECT_media, STACK_media)
SUFFIX = ".media.tar"


def enabled(settings: Settings) -> bool:
    return bool(settings.typed("MEDIA"))


def media_path(backup: Path) -> Path:
    """`<name>.media.tar` beside `<name>.sql.gz`."""
    return backup.with_name(backup.name.removesuffix(".sql.gz") + SUFFIX)


def volume_name(project: str) -> str:
    return f"{project}_{VOLUME}"


# ----------------------------------------------------------------------------------------- the manifest part
def is_part(value: object) -> bool:
    """The manifest's `media` entry: empty (no media), or file/sha256 strings, size a count, files name -> sha256."""
    if not isinstance(value, dict):
        return False
    if not value:
        return True
    files = value.get("files")
    return (
        set(value) == {"file", "sha256", "size", "files"}
        and isinstance(value["file"], str)
        and isinstance(value["sha256"], str)
        and isinstance(value["size"], int)
        and not isinstance(value["size"], bool)
        and value["size"] >= 0
        and isinstance(files, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    )


def archive_hashes(path: Path) -> dict[str, str]:
    """Every regular file of a media tar with its sha256; raises tarfile.TarError/OSError on a damaged one."""
    found: dict[str, str] = {}
    with tarfile.open(path, mode="r:") as archive:
        for member in archive:
            if member.isfile():
                digest, source = hashlib.sha256(), archive.extractfile(member)
                while data := source.read(CHUNK):
                    digest.update(data)
                found[member.name] = digest.hexdigest()
    return found


def file_digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as raw:
        while data := raw.read(CHUNK):
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size


def hash_mismatches(expected: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """What differs between the manifest's file list and what is there, worst first, one phrase each."""
    missing = [f"{name} missing" for name in sorted(set(expected) - set(found))]
    extra = [f"{name} not in the manifest" for name in sorted(set(found) - set(expected))]
    changed = [f"{name} differs" for name in sorted(set(expected) & set(found)) if expected[name] != found[name]]
    return [*missing, *changed, *extra]


def verify(backup: Path, part: Mapping[str, object]) -> None:
    """The media tar of a backup against its manifest part: size, sha256, then every file's sha256."""
    path = backup.with_name(str(part["file"]))
    if not path.is_file():
        raise UserError(f"{backup.name}'s media archive {path.name} is missing; nothing was restored")
    sha256, size = file_digest(path)
    if size != part["size"]:
        raise UserError(f"{path} is {size} bytes, its manifest says {part['size']} (truncated or changed); nothing "
                        "was restored")  # fmt: skip
    if sha256 != part["sha256"]:
        raise UserError(f"{path} does not match its manifest's sha256 (corrupted or changed); nothing was restored")
    try:
        found = archive_hashes(path)
    except (tarfile.TarError, OSError) as error:
        raise UserError(f"{path} is not a readable tar ({error}); nothing was restored") from None
    wrong = hash_mismatches(part["files"], found)  # type: ignore[arg-type]
    if wrong:
        listed = "; ".join(wrong[:3])
        raise UserError(f"{path} does not match its manifest's file list ({listed}); nothing was restored")


def empty_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT):
        pass
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- the sequencer
@dataclass
class Media(UsesContext):
    """The media volume of this checkout's compose project, for db.backup and db.restore."""

    ctx: Context

    @property
    def on(self) -> bool:
        return enabled(self.settings)

    @property
    def volume(self) -> str:
        return volume_name(self.settings.project_name)

    def volume_exists(self) -> bool:
        return self.run(docker.volume_inspect_argv(self.volume), env=self.settings.env, warn=True, capture=True).ok

    def _helper(self, command: str, name: str = "", *, write: bool = False) -> list[str]:
        return helper_argv(self.settings, self.volume, command, name, write=write)

    # ------------------------------------------------------------------------------------------- backup
    def pack(self, backup: Path) -> dict[str, object]:
        """Write the live set as `<backup>.media.tar.partial` (0600, fsynced); return the manifest part. The caller
        renames it with `publish` once the manifest is written, and removes the partial file on failure."""
        path = media_path(backup)
        partial = path.with_name(path.name + ".partial")
        with private.create_private(partial) as raw:
            if self.volume_exists():
                status = self.streams.stream_out(self._helper("pack"), raw.write, env=self.settings.env)
                if status:
                    raise UserError(f"packing the media volume {self.volume} failed (exit {status}, see above); no "
                                    "backup was written")  # fmt: skip
            else:  # never started with media: an empty set, and no volume made just to read it
                raw.write(empty_archive())
            raw.flush()
            os.fsync(raw.fileno())
        try:
            files = archive_hashes(partial)
        except tarfile.TarError as error:
            raise UserError(f"the media volume's archive is not a tar ({error}); no backup was written") from None
        sha256, size = file_digest(partial)
        return {"file": path.name, "sha256": sha256, "size": size, "files": files}

    @staticmethod
    def partial(backup: Path) -> Path:
        path = media_path(backup)
        return path.with_name(path.name + ".partial")

    @staticmethod
    def publish(backup: Path) -> None:
        Media.partial(backup).rename(media_path(backup))

    @staticmethod
    def discard_partial(backup: Path) -> None:
        with contextlib.suppress(OSError):
            Media.partial(backup).unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------------ restore
    def stage(self, backup: Path, part: Mapping[str, object], name: str) -> None:
        """Unpack the backup's media into a new set beside the live one and check every file against the manifest;
        the live set is untouched (a failure removes the new set)."""
        source = backup.with_name(str(part["file"]))
        status = self.streams.stream_in(self._helper("unpack", name, write=True), chunks(source), env=self.settings.env)
        try:
            if status:
                raise UserError(f"unpacking {source.name} into the media volume failed (exit {status}, see above)")
            listed = self.run(self._helper("hashes", name), env=self.settings.env, capture=True, warn=True)
            found = json.loads(listed.stdout) if listed.ok else None
            if not isinstance(found, dict):
                raise UserError(f"the unpacked media of {source.name} could not be listed (see above)")
            wrong = hash_mismatches(part["files"], found)  # type: ignore[arg-type]
            if wrong:
                raise UserError(f"the unpacked media do not match the manifest ({'; '.join(wrong[:3])})")
        except BaseException:
            self.discard(name)
            raise

    def discard(self, name: str) -> None:
        self.run(self._helper("discard", name, write=True), env=self.settings.env, warn=True)

    def swap(self, name: str, files: int) -> None:
        done = self.run(self._helper("swap", name, write=True), env=self.settings.env, capture=True, warn=True)
        if not done.ok:
            raise UserError(f"the database is restored, but swapping in its media failed (see above); the media volume "
                            f"{self.volume} still holds the previous files")  # fmt: skip
        self.say(f"restored {files} media file(s) into the volume {self.volume}")


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw:
        while data := raw.read(CHUNK):
            yield data
