"""Release pushes: the prod image pushed to an empty local registry of the bench's own (REGISTRY_PORT), then again
after a code-only rebuild; seconds, and the bytes and blobs the registry's storage gained (what was uploaded)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bench.context import CODE_FILE, Bench, Section, change_code, restored, timed
from bench.evaluate import Results, Row, fmt, judged
from lifecycle import registry
from lifecycle.commands import docker
from lifecycle.stages import PROD

RELEASE_TARGETS = {"code_only_share_pct": 5.0}  # a code-only push uploads at most 5 % of the first push's bytes
TAGS = ("bench-first", "bench-code-only")


@dataclass(frozen=True)
class PushCost:
    seconds: float
    bytes: int  # what the registry's storage gained: the bytes uploaded
    blobs: int


def stored_blobs(bench: Bench) -> dict[str, int]:
    done = bench.run(registry.blob_sizes_argv(bench.settings), env=bench.env, capture=True)
    return registry.parse_blob_sizes(done.stdout)


def timed_push(bench: Bench, target: str) -> PushCost:
    before = stored_blobs(bench)
    bench.run(docker.tag_argv(bench.settings.image(PROD), target))
    seconds, _ = timed(lambda: bench.run(docker.push_argv(target), capture=True))
    added = registry.blob_delta(before, stored_blobs(bench))
    return PushCost(seconds, added.bytes, added.blobs)


def measure(bench: Bench) -> dict[str, Any]:
    bench.ensure_image(PROD)
    repository = bench.settings.release_repository
    bench.undo.append(lambda: bench.run(registry.down_argv(bench.settings, volumes=True), env=bench.env, warn=True))
    for tag in TAGS:
        bench.undo.append(
            lambda tag=tag: bench.run(docker.docker_argv("image", "rm", f"{repository}:{tag}"), warn=True, capture=True)
        )
    registry.start(bench.settings, bench.run)
    first = timed_push(bench, f"{repository}:{TAGS[0]}")
    with restored(bench.settings.root / CODE_FILE):
        change_code(bench.settings.root, 0)
        bench.build_stage(PROD)
    code_only = timed_push(bench, f"{repository}:{TAGS[1]}")
    bench.build_stage(PROD)  # back to the checkout's tree (cached)
    return {"first": asdict(first), "code_only": asdict(code_only)}


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def rows(pushes: Mapping[str, Any], results: Results) -> list[Row]:
    first, code = pushes["first"], pushes["code_only"]
    share = code["bytes"] / first["bytes"] * 100 if first["bytes"] else None
    return [
        Row("push_first", "release push, first (prod to an empty registry)",
            f"{fmt(first['seconds'])}, {_size(first['bytes'])} in {first['blobs']} blobs"),
        Row("push_code_only", "release push after a code-only change",
            f"{fmt(code['seconds'])}, {_size(code['bytes'])} in {code['blobs']} blobs"),
        judged("push_code_only_share", "code-only push / first push (bytes)", share,
               RELEASE_TARGETS["code_only_share_pct"], unit="%",
               why="more than the code layers went up: a dependency layer changed with the code"),
    ]  # fmt: skip


SECTION = Section("release", "release pushes: first, and after a code-only change", measure, rows, RELEASE_TARGETS)
