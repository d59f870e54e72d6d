"""The code zip that the stage and prod images embed: packed deterministically, checked, described.

The same tree always gives the same bytes (sorted entries, fixed time, modes, compression and host
system), so Docker's layer cache holds across runs, machines and clones. The zip carries only the
include list, never the EXCLUDED kinds, and refuses symlinks that leave the checkout. A manifest next to
the zip records what went in and from which commit; it lives outside the zip so the zip itself stays
identical across commits of the same tree. The entry-safety rule lives in `lifecycle/unpack_zip.py`, which
the image build also copies and runs to unpack the zip, so host and image apply one rule.

Standard library only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from lifecycle.errors import UserError
from lifecycle.staging import write_if_changed
from lifecycle.unpack_zip import printable, unsafe_reason

DEFAULT_INCLUDE = ("manage.py", "django_site")
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESS_LEVEL = 9
UNIX = 3  # ZipInfo.create_system: fixed, whatever the host

# Names (fnmatch patterns, matched case-sensitively against the last path component of files and folders
# alike) that never go into the zip. A folder holding `pyvenv.cfg` is a virtual environment and is
# skipped too, and so is the zip folder itself.
EXCLUDED = (
    # version control
    ".git",
    ".hg",
    ".svn",
    # bytecode, caches and tool state
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".nox",
    ".tox",
    ".coverage*",
    # environments and installed packages
    ".venv",
    "venv",
    "node_modules",
    # secrets: environment files, keys and certificates
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    # local or generated data (static files are collected at image build time)
    ".DS_Store",
    "reports",
    "staticfiles",
    "*.sqlite3",
)


# The suite's own folders of data, never zipped (nor reached through a symlink), wherever the include list points;
# the zip folder and BACKUP_DIR join them from the settings (Local.zip).
SUITE_FOLDERS = (".lifecycle",)
# A bound on the walk: a tree of symlinks that fan out (each folder linking twice to the next) doubles the paths
# at every level without any loop; a code zip held in memory has no business with this many files.
MAX_ENTRIES = 50_000


def excluded(path: Path) -> bool:
    """True when `path` (a file or folder in the tree) must never be zipped."""
    return any(fnmatchcase(path.name, pattern) for pattern in EXCLUDED) or (path / "pyvenv.cfg").is_file()


@dataclass(frozen=True)
class FileEntry:
    """One file in the zip: its path inside the zip, content and whether it is executable."""

    name: str
    data: bytes
    executable: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class ZipResult:
    path: Path
    file_count: int
    size: int  # bytes of the zip file
    sha256: str
    manifest_path: Path
    changed: bool  # False when the zip on disk already had these bytes and was left alone


# ---------------------------------------------------------------------------------------------- collecting


def _arcname_problem(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8; rename it"
    reason = unsafe_reason(name)
    return f"{reason}; rename it" if reason else None


class _Collector:
    def __init__(self, root: Path, skip: Sequence[Path]):
        self.root = root.resolve()
        self.skip = {p.resolve() for p in (*skip, *(root / name for name in SUITE_FOLDERS))}
        self.files: dict[str, FileEntry] = {}
        self.entries = 0

    def _is_skipped(self, path: Path) -> bool:
        """A skipped folder itself (a symlink to one is refused in add, not passed over)."""
        return not path.is_symlink() and path.resolve() in self.skip

    def _excluded_target(self, target: Path) -> bool:
        """True when a symlink's target (inside the root) is, or lies in, something never zipped."""
        current = self.root
        for part in target.relative_to(self.root).parts:
            current = current / part
            if excluded(current) or current in self.skip:
                return True
        return False

    def add(self, path: Path, name: str, chain: frozenset[Path], linked: bool = False) -> None:
        """Add `path` (file or folder, maybe a symlink) under zip name `name`; `chain` guards against loops;
        `linked`: `path` lies in a folder reached through a symlink."""
        if excluded(path) or self._is_skipped(path):
            return
        problem = _arcname_problem(name)
        if problem:
            raise UserError(f"refusing to zip {printable(name)}: {problem}")
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise UserError(
                f"refusing to zip more than {MAX_ENTRIES} files and folders (reached {name}); "
                "exclude the data folder or the symlinks that multiply the tree"
            )
        real = path
        is_link = path.is_symlink()
        if is_link:
            target = path.resolve()
            if not target.is_relative_to(self.root):
                raise UserError(
                    f"refusing to zip {name}: symlink points outside the checkout ({target}); "
                    "remove it or copy the file in"
                )
            if not target.exists():
                raise UserError(f"refusing to zip {name}: symlink is broken ({target}); remove or fix it")
            if self._excluded_target(target):
                raise UserError(
                    f"refusing to zip {name}: symlink points at something never zipped ({target}); remove it"
                )
            real = target
        info = real.stat()
        if stat.S_ISDIR(info.st_mode):
            real = real.resolve()
            if real in chain:
                raise UserError(f"refusing to zip {name}: symlink loop back to {real}; remove the link")
            if is_link and linked:  # links to folders inside linked folders multiply the paths without a loop
                raise UserError(
                    f"refusing to zip {name}: a symlinked folder inside a symlinked folder; "
                    "copy one of them in (a link to a folder may not lead to another)"
                )
            for child in sorted(os.listdir(path)):
                self.add(path / child, f"{name}/{child}", chain | {real}, linked or is_link)
        elif stat.S_ISREG(info.st_mode):
            self.files[name] = FileEntry(name, real.read_bytes(), bool(info.st_mode & 0o111))
        else:
            raise UserError(f"refusing to zip {name}: not a regular file or folder; remove it")


def _include_name(entry: str) -> str:
    """The normalised zip name of one include entry (relative to the root, forward slashes)."""
    if "\\" in entry or PurePosixPath(entry).is_absolute() or Path(entry).is_absolute():
        raise UserError(f"include entry {entry!r} must be a relative path with forward slashes; fix the include list")
    parts = [p for p in PurePosixPath(entry).parts if p != "."]
    if ".." in parts:
        raise UserError(f"include entry {entry!r} leaves the checkout; list paths inside it")
    return "/".join(parts)


def collect(root: Path, include: Sequence[str] = DEFAULT_INCLUDE, skip: Sequence[Path] = ()) -> list[FileEntry]:
    """The files packing would carry, sorted by zip name. `skip` lists folders never to enter, nor to reach through
    a symlink (the zip folder, BACKUP_DIR), besides SUITE_FOLDERS."""
    collector = _Collector(root, skip)
    for entry in include:
        name = _include_name(entry)
        path = root / name if name else root
        if not path.exists() and not path.is_symlink():
            raise UserError(f"include entry {entry!r} does not exist in {root}; create it or fix the include list")
        if name and excluded(path):
            raise UserError(
                f"include entry {entry!r} is excluded from the zip by policy; remove it from the include list"
            )
        if name:
            collector.add(path, name, frozenset())
        else:  # the root itself: its children, named relative to it
            for child in sorted(os.listdir(path)):
                collector.add(path / child, child, frozenset({collector.root}))
    return [collector.files[name] for name in sorted(collector.files)]


# ------------------------------------------------------------------------------------------------ packing


def zip_bytes(files: Sequence[FileEntry]) -> bytes:
    """A deterministic zip of `files`: same input, same bytes, on any machine and any day."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=COMPRESSION, compresslevel=COMPRESS_LEVEL) as archive:
        for entry in sorted(files, key=lambda f: f.name):
            info = zipfile.ZipInfo(entry.name, date_time=FIXED_DATE_TIME)
            info.compress_type = COMPRESSION
            info.create_system = UNIX
            info.external_attr = (stat.S_IFREG | (0o755 if entry.executable else 0o644)) << 16
            info.extra = b""
            info.comment = b""
            archive.writestr(info, entry.data, compress_type=COMPRESSION, compresslevel=COMPRESS_LEVEL)
        archive.comment = b""
    return buffer.getvalue()


def pack_bytes(
    root: Path, include: Sequence[str] = DEFAULT_INCLUDE, zip_dir: Path | None = None, skip: Sequence[Path] = ()
) -> tuple[bytes, list[FileEntry]]:
    """Pack the tree in memory: the zip's bytes and the files it carries."""
    files = collect(root, include, skip=[*skip, *([zip_dir] if zip_dir is not None else [])])
    return zip_bytes(files), files


def git_state(root: Path, include: Sequence[str] = DEFAULT_INCLUDE) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the included paths have uncommitted changes); None for what git can't tell."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}

    def git(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(
                ["git", "--literal-pathspecs", "-C", str(root), *args],
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            return None

    head = git("rev-parse", "--verify", "--quiet", "HEAD")
    commit = (head.stdout.strip() or None) if head is not None and head.returncode == 0 else None
    status = git("status", "--porcelain", "--", *[_include_name(e) or "." for e in include])
    dirty = bool(status.stdout.strip()) if status is not None and status.returncode == 0 else None
    return commit, dirty


def manifest_path_for(zip_path: Path) -> Path:
    return zip_path.with_name(f"{zip_path.stem}.manifest.json")


def manifest_text(
    zip_name: str, zip_sha256: str, files: Sequence[FileEntry], commit: str | None, dirty: bool | None
) -> str:
    manifest = {
        "zip": zip_name,
        "sha256": zip_sha256,
        "file_count": len(files),
        "total_size": sum(len(f.data) for f in files),
        "files": [
            {"path": f.name, "sha256": f.sha256, "size": len(f.data)} for f in sorted(files, key=lambda f: f.name)
        ],
        "commit": commit,
        "dirty": dirty,
    }
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def pack_zip(
    root: Path, zip_path: Path, include: Sequence[str] = DEFAULT_INCLUDE, skip: Sequence[Path] = ()
) -> ZipResult:
    """Pack the include list under `root` into `zip_path` (written only when its bytes change) plus its manifest.
    `skip`: more folders of data never zipped (BACKUP_DIR)."""
    data, files = pack_bytes(root, include, zip_path.parent, skip)
    digest = hashlib.sha256(data).hexdigest()
    manifest_path = manifest_path_for(zip_path)
    commit, dirty = git_state(root, include)
    try:
        changed = write_if_changed(zip_path, data)
        write_if_changed(manifest_path, manifest_text(zip_path.name, digest, files, commit, dirty).encode())
    except OSError as error:
        raise UserError(
            f"cannot write {zip_path}: {error.strerror or error}; check ZIP_DIR and its permissions"
        ) from error
    return ZipResult(zip_path, len(files), len(data), digest, manifest_path, changed)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def summary(result: ZipResult, root: Path | None = None) -> str:
    """The one line `invoke zip` prints: path, file count, size, sha256 (and whether the file was rewritten)."""
    path = result.path
    if root is not None and path.is_relative_to(root):
        path = path.relative_to(root)
    state = "written" if result.changed else "unchanged"
    return f"{path}: {result.file_count} files, {_human(result.size)}, sha256 {result.sha256} ({state})"


# ------------------------------------------------------------------------------------------------ checking


def is_stale(root: Path, zip_path: Path, include: Sequence[str] = DEFAULT_INCLUDE, skip: Sequence[Path] = ()) -> bool:
    """True when the zip is missing, unreadable, corrupt, or differs from what packing the tree now gives.

    Packs in memory, so a tree that `pack_zip` would refuse raises the same UserError here.
    """
    try:
        current = zip_path.read_bytes()
    except OSError:
        return True
    data, _ = pack_bytes(root, include, zip_path.parent, skip)
    return current != data
