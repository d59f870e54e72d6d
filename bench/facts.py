"""Docker facts: the machine a run happened on, image sizes and layers, and when containers turned healthy.

The parsers are pure (unit-tested). The questions only the benchmark asks (sizes, layers, container
timelines) are here, on `lifecycle.probes.output`; those the suite shares (image ids, engine and compose
versions) come from `lifecycle.probes`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from lifecycle import probes
from lifecycle.commands import docker
from lifecycle.runner import Runner
from lifecycle.settings import Settings

MB = 1_000_000  # decimal megabytes, as `docker images` shows them


def output(run: Runner, argv: list[str]) -> str | None:
    """A probe's stdout without the newline; None when the command fails (the failure is the answer)."""
    found = probes.output(run, argv)
    return None if found is None else found.strip()


def image_bytes(run: Runner, image: str) -> int | None:
    out = output(run, docker.docker_argv("image", "inspect", "--format", "{{.Size}}", image))
    return int(out) if out and out.isdigit() else None


def image_history(run: Runner, image: str) -> str:
    """Sizes and commands of an image's layers, newest first (see parse_history)."""
    argv = docker.docker_argv("history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", image)
    return output(run, argv) or ""


def container_state(run: Runner, container: str) -> dict[str, Any]:
    """The container's State, plus when it was created (after the build, when `up` rebuilds)."""
    inspected = json.loads(output(run, docker.docker_argv("inspect", "--format", "{{json .}}", container)) or "{}")
    return {**inspected.get("State", {}), "CreatedAt": inspected.get("Created", "")}


def megabytes(size: int | None) -> float | None:
    return None if size is None else size / MB


def added_over_base(stage_bytes: int | None, base_bytes: int | None) -> int | None:
    """Bytes a stage adds over its base image (`docker image inspect` sizes include the base layers)."""
    if stage_bytes is None or base_bytes is None:
        return None
    return stage_bytes - base_bytes


def parse_history(text: str, base_layers: int = 0) -> list[tuple[int, str]]:
    """`docker history --human=false --format '{{.Size}}\\t{{.CreatedBy}}'` -> the layers above the base,
    biggest first."""
    rows = []
    for line in text.strip().splitlines():
        size, _, created_by = line.partition("\t")
        if size.strip().isdigit():
            rows.append((int(size), " ".join(created_by.split())))
    rows = rows[: len(rows) - base_layers] if base_layers else rows
    return sorted(rows, key=lambda row: -row[0])


def parse_docker_time(text: str) -> float | None:
    """Docker's RFC 3339 times (nanoseconds, `Z`) as a UNIX timestamp; None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text.strip())
    if not match:
        return None
    whole, fraction, zone = match.groups()
    stamp = dt.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def first_healthy(state: Mapping[str, Any]) -> float | None:
    """When the first passing health check of a container's State ended (UNIX time)."""
    log = (state.get("Health") or {}).get("Log") or []
    ends = [parse_docker_time(entry.get("End", "")) for entry in log if entry.get("ExitCode") == 0]
    ends = [end for end in ends if end is not None]
    return min(ends) if ends else None


def timeline(t0: float, states: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Seconds after `t0` (the `up` call) at which each container was created, started and first turned
    healthy (None for what the state does not say)."""
    out: dict[str, float | None] = {}
    for name, state in states.items():
        moments = {
            "created": parse_docker_time(state.get("CreatedAt", "")),
            "started": parse_docker_time(state.get("StartedAt", "")),
            "healthy": first_healthy(state),
        }
        for moment, stamp in moments.items():
            if moment != "created" or stamp is not None:
                out[f"{name}_{moment}"] = None if stamp is None else round(stamp - t0, 2)
    return out


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine_facts(settings: Settings, run: Runner, runs: int, tool: str) -> dict[str, Any]:
    """What the numbers depend on: cores, load, engine, base images, load generator, commit."""

    def known(argv: list[str]) -> str:
        return output(run, argv) or "unknown"

    def image(name: str) -> str:
        return f"{name} ({known(docker.docker_argv('image', 'inspect', '--format', '{{.Id}} {{.Size}} bytes', name))})"

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "nproc": os.cpu_count(),
        "loadavg_start": loadavg(),
        "docker": (probes.engine_version(run) or "unknown").strip(),
        "compose": (probes.compose_version(run) or "unknown").strip(),
        "base_image": image(settings.base_image),
        "db_image": image(settings["DB_IMAGE"]),
        "load_generator": known(["sh", "-c", "wrk -v 2>&1 | head -1"]) if tool == "wrk" else "Python (no wrk)",
        "commit": known(["git", "-C", str(settings.root), "rev-parse", "--short", "HEAD"]),
        "python": sys.version.split()[0],
        "notes": [
            "cold builds use --no-cache: no layer cache, but BuildKit's apt and uv cache mounts stay warm",
            "every value shares the cores with the load generator and with other users of the engine",
        ],
    }
