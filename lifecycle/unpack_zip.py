"""The one zip-entry rule, and the script that unpacks the code zip inside the image.

The image build copies this file alone and runs `python3 /tmp/unpack_zip.py ZIPFILE DEST`, so it uses the
standard library only and imports nothing from `lifecycle`. Every entry is checked before anything is
written, so a bad zip (missing, corrupt, or with an entry that would land outside DEST) writes nothing,
prints one line to stderr and exits 2. `lifecycle.codezip` imports `unsafe_reason` (and `printable`) from
here, so the host (`invoke zip`) refuses to pack what the image would refuse to unpack.
"""

from __future__ import annotations

import re
import shutil
import stat
import sys
import zipfile
import zlib
from pathlib import Path

EXECUTABLE_MODE = 0o755
FILE_MODE = 0o644
_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_reason(name: str) -> str | None:
    """Why an entry (or include) name could land outside the folder it is unpacked into, or None if it can't."""
    if not name:
        return "empty name"
    if "\\" in name:
        return "backslash in the name"
    if "\0" in name:
        return "NUL byte in the name"
    if name.startswith("/"):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter"
    if ".." in name.split("/"):
        return ".. component"
    return None


def entry_mode(info: zipfile.ZipInfo) -> int:
    """The mode an entry is unpacked with: 0o755 when any execute bit is set in the zip, else 0o644."""
    return EXECUTABLE_MODE if (info.external_attr >> 16) & 0o111 else FILE_MODE


def _is_special(info: zipfile.ZipInfo) -> bool:
    """A symlink (or other non-file, non-folder) entry: following it could write outside the app folder."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def printable(name: str) -> str:
    """An entry name fit for a one-line message (quoted when it holds control characters)."""
    return name if name.isprintable() else repr(name)


def zip_problem(path: Path) -> str | None:
    """One line saying what is wrong with the zip at `path` and what to do, or None when it is safe to unpack."""
    if not path.is_file():
        return f"{path} does not exist; run `invoke zip` first"
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                reason = unsafe_reason(info.filename)
                if reason:
                    return (
                        f"{path} entry {printable(info.filename)} would land outside the app folder ({reason}); "
                        "rebuild the zip with `invoke zip`"
                    )
                if _is_special(info):
                    return (
                        f"{path} entry {printable(info.filename)} is a symlink or special file, which could point "
                        "outside the app folder; rebuild the zip with `invoke zip`"
                    )
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError) as error:
        return f"{path} is corrupt ({error}); run `invoke zip` to rebuild it"
    if bad is not None:
        return f"{path} is corrupt (bad CRC in {printable(bad)}); run `invoke zip` to rebuild it"
    return None


def unpack(path: Path, dest: Path) -> int:
    """Check the whole zip, then extract it into dest; return the number of files written."""
    problem = zip_problem(path)
    if problem:
        raise ValueError(problem)
    dest.mkdir(parents=True, exist_ok=True)
    top = dest.resolve()
    count = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            target = dest.joinpath(*[part for part in info.filename.split("/") if part not in ("", ".")])
            if not target.resolve().is_relative_to(top):
                raise ValueError(
                    f"{path} entry {printable(info.filename)} resolves outside {dest}; remove what is in the way"
                )
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            with archive.open(info) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            target.chmod(entry_mode(info))
            count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: unpack_zip.py ZIPFILE DEST", file=sys.stderr)
        return 2
    try:
        count = unpack(Path(argv[0]), Path(argv[1]))
    except (ValueError, OSError) as error:
        print(f"unpack_zip: {error}", file=sys.stderr)
        return 2
    print(f"unpack_zip: {count} files from {argv[0]} into {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
