"""The media volume's side of db.backup/db.restore: standalone (standard library only), run in a throwaway container
that mounts the volume, `python3 -c SOURCE COMMAND ROOT [NAME]` (lifecycle/media.py passes this file's text).

The volume (ROOT, /var/lib/app/media in the containers) holds `sets/<name>/` folders and `current`, a symlink to
the live one, which is MEDIA_ROOT. A restore unpacks into `sets/<name>.partial`, is checked file by file, and is
swapped in with one rename of `current` (atomic): the app sees the old set or the new one, never half of one.

    pack ROOT            the live set as a tar on stdout (regular files and folders; names sorted; owners dropped)
    unpack ROOT NAME     a tar on stdin into sets/NAME.partial (nothing outside it: no links, no absolute names)
    hashes ROOT [NAME]   {"relative/path": sha256} of the live set (or of sets/NAME.partial) as JSON
    swap ROOT NAME       sets/NAME.partial becomes the live set; the one it replaced is removed
    discard ROOT NAME    remove sets/NAME.partial

As root (the restore's helper runs so, to work on a volume whatever made it) everything it writes is given to
the app's UID and GID; folders are 2775 and files 0664 so dev's host user (group 10001) may add uploads too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path, PurePosixPath

APP_UID = APP_GID = 10001
CURRENT, SETS, INITIAL = "current", "sets", "initial"
DIR_MODE, FILE_MODE = 0o2775, 0o664
CHUNK = 1 << 20


def fail(message: str) -> None:
    print(f"media: {message}", file=sys.stderr)
    raise SystemExit(2)


def own(path: Path) -> None:
    if os.geteuid() == 0:
        os.lchown(path, APP_UID, APP_GID)


def ensure_layout(root: Path) -> Path:
    """`current` -> `sets/initial` when the volume has none yet (a fresh volume of an image without the layout)."""
    live = root / CURRENT
    if not live.is_symlink():
        if live.exists():
            fail(f"{live} is not a symlink; the volume was not made by the suite")
        (root / SETS / INITIAL).mkdir(parents=True, exist_ok=True)
        for made in (root, root / SETS, root / SETS / INITIAL):
            own(made)
            made.chmod(DIR_MODE)
        live.symlink_to(f"{SETS}/{INITIAL}")
        own(live)
    return live


def live_set(root: Path) -> Path:
    live = root / CURRENT
    return live.resolve() if live.is_symlink() else root / SETS / INITIAL  # no layout yet: an empty set


def walk(top: Path) -> list[tuple[str, Path]]:
    """Every folder and regular file under top, as (relative posix name, path), sorted by name."""
    found: list[tuple[str, Path]] = []
    if not top.is_dir():
        return found
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        for name in [*dirs, *files]:
            path = Path(folder) / name
            found.append((path.relative_to(top).as_posix(), path))
    return sorted(found)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while data := handle.read(CHUNK):
            digest.update(data)
    return digest.hexdigest()


def hashes(top: Path) -> dict[str, str]:
    return {name: file_sha256(path) for name, path in walk(top) if path.is_file() and not path.is_symlink()}


def pack(root: Path, out) -> None:
    top = live_set(root)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for name, path in walk(top):
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                print(f"media: skipped {name} (not a regular file or folder)", file=sys.stderr)
                continue
            info = archive.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)


def safe_member(member: tarfile.TarInfo) -> str:
    """The member's name when it stays inside the set; anything else (links, devices, `..`, absolute) fails."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
        fail(f"the archive holds {member.name!r}, which a media backup never does; nothing was restored")
    return name.as_posix()


def unpack(root: Path, name: str, stream) -> None:
    ensure_layout(root)
    target = root / SETS / f"{name}.partial"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    own(target)
    target.chmod(DIR_MODE)
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            path = target / safe_member(member)
            path.parent.mkdir(parents=True, exist_ok=True)
            if member.isdir():
                path.mkdir(exist_ok=True)
                path.chmod(DIR_MODE)
            else:
                source = archive.extractfile(member)
                with path.open("wb") as handle:
                    shutil.copyfileobj(source, handle, CHUNK)
                    handle.flush()
                    os.fsync(handle.fileno())
                path.chmod(FILE_MODE)
                os.utime(path, (member.mtime, member.mtime))
            own(path)
    for _, path in walk(target):  # folders made on the way for a file listed before its folder
        if path.is_dir():
            own(path)
            path.chmod(DIR_MODE)


def swap(root: Path, name: str) -> str:
    """One rename of `current` makes sets/NAME the live set; return the set it replaced (then removed)."""
    ensure_layout(root)
    partial, final = root / SETS / f"{name}.partial", root / SETS / name
    if not partial.is_dir():
        fail(f"{partial} does not exist; nothing was swapped")
    old = os.readlink(root / CURRENT)
    partial.rename(final)
    staged = root / f"{CURRENT}.new"
    staged.unlink(missing_ok=True)
    staged.symlink_to(f"{SETS}/{name}")
    own(staged)
    os.replace(staged, root / CURRENT)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if (root / old).resolve() != final.resolve():
        shutil.rmtree(root / old, ignore_errors=True)
    return old


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        fail("usage: pack|unpack|hashes|swap|discard ROOT [NAME]")
    command, root, name = argv[0], Path(argv[1]), (argv[2] if len(argv) > 2 else "")
    if command == "pack":
        pack(root, sys.stdout.buffer)
    elif command == "unpack" and name:
        unpack(root, name, sys.stdin.buffer)
    elif command == "hashes":
        top = root / SETS / f"{name}.partial" if name else live_set(root)
        print(json.dumps(hashes(top), sort_keys=True))
    elif command == "swap" and name:
        print(swap(root, name))
    elif command == "discard" and name:
        shutil.rmtree(root / SETS / f"{name}.partial", ignore_errors=True)
    else:
        fail(f"unknown command {' '.join(argv)!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
