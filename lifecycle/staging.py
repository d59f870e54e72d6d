"""Files a build reads, staged so that two builds of one checkout at once (two terminals, two test workers) never
meet a half-written or vanished file: each file is written to a temporary name beside it and renamed over the old
one, only when its bytes change; a stale file is removed by whichever build gets there first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write `data` to `path` (temp file in the same folder, then rename), unless it already holds it."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def mirror(wanted: Mapping[str, bytes], target: Path, pattern: str = "**/*") -> list[str]:
    """Make `target` hold exactly `wanted` (relative path -> bytes) among the files `pattern` matches; return the
    paths written. Empty folders left by removed files go too."""
    written = [relative for relative, data in sorted(wanted.items()) if write_if_changed(target / relative, data)]
    for found in sorted(target.glob(pattern), reverse=True):  # deepest first: a folder after its files
        relative = found.relative_to(target).as_posix()
        if found.is_dir() and not found.is_symlink():
            with suppress(OSError):  # not empty (kept files, another build's temporary file), or gone already
                found.rmdir()
        elif relative not in wanted and not (found.name.startswith(".") and found.name.endswith(".tmp")):
            found.unlink(missing_ok=True)
    return written
