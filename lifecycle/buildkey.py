"""The build key: one digest of everything a stage's image is built from, so an unchanged build is skipped.

`invoke build` stores the key in the image's `io.lifecycle.build-key` label (compose passes `BUILD_KEY` as
a build label) and, next time, compares it with one `docker image inspect` instead of running a build.
The key covers every input, read from the Dockerfile itself rather than from a list that could drift:
the Dockerfile, compose.yaml and .dockerignore; the content of every path a `COPY`/`ADD` takes from the
build context or a `RUN --mount=type=bind` mounts from it (after build-argument substitution, so the code zip
is covered through its name); the value of every `ARG` (the labels' commit and time included); the target; and
the base image's id. Paths and ARGs count only in the stages the target is built from (its `FROM` and `--from`
stages, all the way down), so a test file does not change prod's key, nor the code the SBOM image's. A change to
any input changes the key, and the build runs; an unchanged key means BuildKit would rebuild nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

LABEL = "io.lifecycle.build-key"


@dataclass(frozen=True)
class BuildInputs:
    """Where one image's build reads from, each path relative to the checkout: its build context, its
    Dockerfile, and the other files that shape the build (the compose file that drives it, .dockerignore)."""

    context: Path
    dockerfile: Path
    files: tuple[Path, ...]


DOCKERFILE = Path("docker") / "Dockerfile"
APP = BuildInputs(Path("."), DOCKERFILE, (DOCKERFILE, Path("docker") / "compose.yaml", Path(".dockerignore")))
CONTEXT_FILES = APP.files
SKIPPED_NAMES = {"__pycache__", ".pytest_cache"}  # never sent (.dockerignore) and rewritten by any run

_ARG = re.compile(r'^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=("[^"\n]*"|\S*))?\s*$', re.MULTILINE)
_FROM = re.compile(r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)
_FROM_STAGE = re.compile(r"--(?:mount=\S*?)?from=([^\s,]+)")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        joined.append(current + stripped)
        current = ""
    if current:
        joined.append(current.strip())
    return joined


def stages(dockerfile: str) -> dict[str, list[str]]:
    """The Dockerfile's instructions by stage name ('' holds those before the first FROM; an unnamed stage
    is named by its number)."""
    found: dict[str, list[str]] = {"": []}
    current = ""
    for instruction in instructions(dockerfile):
        match = _FROM.match(instruction)
        if match:
            current = match.group(2) or str(len(found) - 1)
            found[current] = []
        found[current].append(instruction)
    return found


def stage_closure(dockerfile: str, target: str) -> list[str]:
    """The instructions the target stage is built from: the global ones, its own, and those of every stage it
    starts `FROM` or takes files `--from` (mounts `from=` too), all the way down. An unknown target (a
    Dockerfile without stage names): every instruction."""
    by_name = stages(dockerfile)
    if target not in by_name:
        return instructions(dockerfile)
    needed, pending = [], [target]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.append(name)
        for instruction in by_name[name]:
            parent = _FROM.match(instruction)
            refs = [parent.group(1)] if parent else _FROM_STAGE.findall(instruction)
            pending += [ref for ref in refs if ref in by_name and ref]
    return by_name[""] + [line for name in by_name if name in needed for line in by_name[name]]


def arg_names_and_defaults(dockerfile: str) -> dict[str, str]:
    """Every ARG the Dockerfile declares, with its default ('' when it has none; the first one wins)."""
    found: dict[str, str] = {}
    for name, default in _ARG.findall(dockerfile):
        found.setdefault(name, default[1:-1] if default.startswith('"') else default)
    return found


def substitute(text: str, values: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), ""), text)


def mount_sources(run_flags: Iterable[str]) -> list[str]:
    """The build-context paths a RUN's `--mount=type=bind,...` flags read (not `from=` another stage; no
    `source=` is the whole context)."""
    sources = []
    for flag in run_flags:
        if not flag.startswith("--mount="):
            continue
        options = dict(part.partition("=")[::2] for part in flag.removeprefix("--mount=").split(","))
        if options.get("type", "bind") == "bind" and "from" not in options:
            sources.append(options.get("source") or options.get("src") or ".")
    return sources


def context_sources(dockerfile: str, args: Mapping[str, str]) -> list[str]:
    """The build-context paths that COPY and ADD read, and RUN bind-mounts (not `--from` another stage), args
    substituted."""
    sources = []
    for instruction in instructions(dockerfile):
        keyword, _, rest = instruction.partition(" ")
        if keyword.upper() == "RUN":
            flags = itertools.takewhile(lambda word: word.startswith("--"), rest.split())
            sources += [substitute(path, args).rstrip("/") for path in mount_sources(flags)]
            continue
        if keyword.upper() not in ("COPY", "ADD"):
            continue
        parts = rest.split()
        flags = list(itertools.takewhile(lambda word: word.startswith("--"), parts))
        if any(flag.startswith("--from") for flag in flags):
            continue
        body = rest.split(None, len(flags))[-1] if flags else rest
        words = json.loads(body) if body.lstrip().startswith("[") else shlex.split(body)
        sources += [posixpath.normpath(substitute(path, args)) for path in words[:-1]]  # the last one is the target
    return sorted(set(sources))


def files_under(root: Path, relative: str) -> list[Path]:
    """The files a source path stands for (a file, or every file under a folder), in a stable order."""
    path = root / relative
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []  # the build itself then fails and says so; the key only has to differ
    return sorted(
        p for p in path.rglob("*") if p.is_file() and not SKIPPED_NAMES.intersection(p.relative_to(root).parts)
    )


def build_key(
    root: Path,
    target: str,
    env: Mapping[str, str],
    base_image_id: str,
    extra: Iterable[str] = (),
    inputs: BuildInputs = APP,
) -> str:
    """The digest of every input of the build of `target` (see the module docstring)."""
    path = root / inputs.dockerfile
    whole = path.read_text(encoding="utf-8") if path.is_file() else ""  # the build then says it is missing
    dockerfile = "\n".join(stage_closure(whole, target))
    defaults = arg_names_and_defaults(dockerfile)
    args = {name: env.get(name) or default for name, default in defaults.items()}
    context = root / inputs.context
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("target", target.encode())
    add("base-image", base_image_id.encode())
    for item in extra:
        add("extra", item.encode())
    for name in sorted(args):
        add(f"arg:{name}", args[name].encode())
    for relative in (inputs.dockerfile, *inputs.files):
        add(f"file:{relative}", (root / relative).read_bytes() if (root / relative).is_file() else b"")
    for source in context_sources(dockerfile, args):
        add(f"source:{source}", b"")
        for file in files_under(context, source):
            add(f"file:{file.relative_to(context)}:{file.stat().st_mode & 0o777:o}", file.read_bytes())
    return digest.hexdigest()
