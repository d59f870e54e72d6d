"""pip against uv: a fresh virtualenv of runtime.txt in throwaway containers of the dev image, caches off
(downloads and builds included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.context import Bench, Section, say
from bench.evaluate import Results, Row, fmt, median
from lifecycle.commands import docker
from lifecycle.stages import DEV

UV_PIN = "uv==0.13.9"
SCRIPT = (
    "set -e; t() { date +%s.%N; }; req=/tmp/requirements/runtime.txt\n"
    "python3 -m venv /tmp/pip-venv; a=$(t)\n"
    '/tmp/pip-venv/bin/pip install --quiet -r $req; b=$(t); echo "BENCH pip $a $b"\n'
    f"python3 -m venv /tmp/uv-venv; a=$(t); /tmp/uv-venv/bin/pip install --quiet {UV_PIN}; b=$(t)\n"
    "/tmp/uv-venv/bin/uv pip install --quiet --python /tmp/uv-venv/bin/python -r $req; c=$(t)\n"
    'echo "BENCH uv $a $b $c"\n'
)


def parse_pip_uv(output: str) -> dict[str, float]:
    """The `BENCH pip A B` / `BENCH uv A B C` lines (UNIX times) -> seconds."""
    times: dict[str, float] = {}
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["BENCH", "pip"] and len(parts) == 4:
            times["pip"] = round(float(parts[3]) - float(parts[2]), 2)
        elif parts[:2] == ["BENCH", "uv"] and len(parts) == 5:
            times["uv_bootstrap"] = round(float(parts[3]) - float(parts[2]), 2)
            times["uv_install"] = round(float(parts[4]) - float(parts[3]), 2)
    if set(times) != {"pip", "uv_bootstrap", "uv_install"}:
        raise ValueError("pip/uv timing lines missing from the container's output")
    return times


def measure(bench: Bench) -> dict[str, Any]:
    timings: dict[str, list[float]] = {"pip": [], "uv_bootstrap": [], "uv_install": []}
    bench.ensure_image(DEV)
    for number in range(bench.runs):
        no_cache = ("--env", "PIP_NO_CACHE_DIR=1", "--env", "UV_NO_CACHE=1")
        name = bench.container(f"pipuv-{number}")
        argv = docker.docker_argv(
            "run", "--rm", "--name", name, "--entrypoint", "bash", *no_cache, bench.settings.image(DEV)
        )
        times = parse_pip_uv(bench.run([*argv, "-c", SCRIPT], env=bench.env, capture=True).stdout)
        for key, value in times.items():
            timings[key].append(value)
        say(f"pip vs uv: {times}")
    return timings


def rows(timings: Mapping[str, Any], results: Results) -> list[Row]:
    pip_s, uv_install, uv_boot = (median(timings.get(key, [])) for key in ("pip", "uv_install", "uv_bootstrap"))
    uv_total = None if uv_install is None or uv_boot is None else uv_install + uv_boot
    return [
        Row("pip", "pip install -r runtime.txt (empty cache)", fmt(pip_s)),
        Row(
            "uv",
            f"uv pip install -r runtime.txt (empty cache; + installing {UV_PIN})",
            f"{fmt(uv_install)} (+ {fmt(uv_boot)} = {fmt(uv_total)})",
        ),
    ]


SECTION = Section("pipuv", "pip vs uv installing runtime.txt from an empty cache", measure, rows)
