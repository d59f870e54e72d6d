"""Image sizes: each stage over the Python base, the biggest layers of prod, and where the compiler is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench import facts
from bench.context import Bench, Section
from bench.evaluate import Results, Row, fmt, verdict
from lifecycle.commands import docker
from lifecycle.stages import PROD, STAGE, STAGES

IMAGE_TARGETS = {"prod_added_mb": 60.0}
SHIPPED = (STAGE.name, PROD.name)  # the stages that must not carry a compiler


def measure(bench: Bench) -> dict[str, Any]:
    run, base = bench.run, bench.settings.base_image
    base_layers = len((facts.output(run, docker.docker_argv("history", "--quiet", base)) or "").splitlines())
    images: dict[str, Any] = {"base": {"name": base, "bytes": facts.image_bytes(run, base)}, "stages": {}}
    for stage in STAGES:
        bench.ensure_image(stage)
        image = bench.settings.image(stage)
        gcc = facts.output(
            run, docker.docker_argv("run", "--rm", "--entrypoint", "sh", image, "-c", "command -v gcc cc || true")
        )
        images["stages"][stage.name] = {
            "image": image,
            "bytes": facts.image_bytes(run, image),
            "gcc": (gcc or "").replace("\n", " "),
            "top_layers": facts.parse_history(facts.image_history(run, image), base_layers)[:5],
        }
    return images


def rows(images: Mapping[str, Any], results: Results) -> list[Row]:
    out: list[Row] = []
    base = images.get("base", {})
    for stage, info in images.get("stages", {}).items():
        added = facts.added_over_base(info.get("bytes"), base.get("bytes"))
        total, over = fmt(facts.megabytes(info.get("bytes")), "MB"), fmt(facts.megabytes(added), "MB")
        size = f"{total} (+{over} over {base.get('name')})"
        if stage == PROD.name:
            layers = "; ".join(
                f"{facts.megabytes(size):.0f} MB {made[:70]}" for size, made in info.get("top_layers", [])[:3]
            )
            limit, added_mb = IMAGE_TARGETS["prod_added_mb"], facts.megabytes(added)
            ok = None if added_mb is None else added_mb <= limit
            why = f"biggest layers over the base: {layers}" if ok is False else ""
            out.append(Row("size_prod", "image prod", size, f"≤ +{limit:g} MB over base", verdict(ok), why))
        else:
            out.append(Row(f"size_{stage}", f"image {stage}", size))
        if "gcc" in info:
            out.append(toolchain_row(stage, info["gcc"]))
    return out


def toolchain_row(stage: str, gcc: str) -> Row:
    found = f"gcc at {gcc}" if gcc else "gcc absent"
    if stage not in SHIPPED:
        return Row(f"toolchain_{stage}", f"toolchain in {stage}", "gcc present" if gcc else "gcc absent")
    why = "the stage copies or installs the toolchain" if gcc else ""
    return Row(f"toolchain_{stage}", f"no compiler in {stage}", found, "gcc absent", verdict(not gcc), why)


SECTION = Section("images", "image sizes, biggest layers, compilers", measure, rows, IMAGE_TARGETS)
