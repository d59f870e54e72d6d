"""Files that hold data or secrets (backups, manifests, `.env`, the release log): the owner's alone from the first
byte, whatever the umask, and never written through a link someone else planted.

- `private_folder` makes a folder 0700 (an existing one of ours is narrowed to 0700; a shared one such as /tmp is
  left alone, since the files in it are private and created exclusively).
- `create_private` opens a new file 0600 with O_EXCL|O_NOFOLLOW: an existing file or a symlink at that name makes
  it fail instead of writing somewhere else.
- `write_private_text` replaces a file atomically: a 0600 temporary file, fsync, rename, fsync of the folder, so
  a reader (compose reading `.env`) sees the old file or the whole new one, never half of it.
- `readable_by_others` is what `db.list` warns about.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

FILE_MODE, FOLDER_MODE = 0o600, 0o700
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def private_folder(path: Path) -> Path:
    """Make `path` (and missing parents) exist; a folder this process creates or owns ends up 0700.

    A folder owned by someone else, or shared (world-writable or sticky, like /tmp), keeps its mode: narrowing it
    would break the others; the files written into it are private and exclusive anyway."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=FOLDER_MODE)
    info = path.stat()
    shared = info.st_mode & (stat.S_ISVTX | stat.S_IWOTH)
    if info.st_uid == os.geteuid() and not shared and stat.S_IMODE(info.st_mode) != FOLDER_MODE:
        path.chmod(FOLDER_MODE)
    return path


def create_private(path: Path, mode: int = FILE_MODE):
    """A new file opened for binary writing, `mode` from creation; fails if anything (a file, a link) is there."""
    return os.fdopen(os.open(path, _CREATE, mode), "wb")


def fsync_folder(path: Path) -> None:
    """Make a rename or a new name in `path` durable."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write a new file at `path` exclusively, 0600, and make it durable (content and name)."""
    with create_private(path) as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    fsync_folder(path.parent)


def write_private_text(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`: 0600 from the first byte; interrupted, the old file stays whole."""
    replace_private(path, text.encode("utf-8"))


def replace_private(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` atomically with `data`: a new file created exclusively with `mode` (whatever the umask), fsync,
    rename over `path`, fsync of the folder; interrupted, the old file stays whole and no temporary file is left."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with create_private(temporary, mode) as file:
            os.fchmod(file.fileno(), mode)  # the umask may have taken bits off a wider mode
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(path.parent)


def open_private_append(path: Path):
    """A log opened for appending text; created 0600 when new; never through a symlink."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, FILE_MODE), "a", encoding="utf-8")


def readable_by_others(path: Path) -> bool:
    """True when a user other than the file's owner may read it (group or other read bits)."""
    return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
