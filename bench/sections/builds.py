"""Builds: cold builds of every stage, and the rebuilds a user waits for after no change, a code change
and a requirements change (the whole `invoke build` process, and the compose build inside it)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.context import CODE_FILE, Bench, Section, append_line, change_code, restored
from bench.evaluate import Results, Row, fmt, judged, load_hint, median
from lifecycle.stages import NAMES, PROD, STAGES

REQUIREMENTS_FILE = Path("requirements") / "runtime.txt"
# The lock is hash-checked, so a new pin needs `invoke deps.lock` (the network): a new line in the lock stands for
# it, and makes the image build install the virtualenv again, which is the cost a new pin has.
REQUIREMENTS_CHANGE = "# bench: requirements change"
BUILD_PROD = ("build", "--stage", PROD.name)
REBUILD_TARGETS = {"noop_s": 0.3, "code_only_s": 1.0, "code_only_ratio": 0.05}


# ------------------------------------------------------------------------------------------------ cold
def measure_cold(bench: Bench) -> dict[str, Any]:
    return {stage.name: [bench.build_stage(stage, no_cache=True).suite for _ in range(bench.runs)] for stage in STAGES}


def cold_rows(cold: Mapping[str, Any], results: Results) -> list[Row]:
    return [
        Row(f"cold_build_{stage}", f"cold build {stage} (--no-cache)", fmt(median(cold[stage])))
        for stage in NAMES
        if stage in cold
    ]


COLD = Section("cold", "every stage built with --no-cache (cache mounts warm)", measure_cold, cold_rows)


# --------------------------------------------------------------------------------------------- rebuild
def measure_rebuilds(bench: Bench) -> dict[str, Any]:
    """Per change, `invoke build --stage prod` as a process, then the same change again through the suite
    (to time the compose build alone); each code change is new, so no run hits the cache of the last."""
    root, image = bench.settings.root, bench.settings.image(PROD)
    bench.build_stage(PROD)  # whatever came before, prod is cached from here on
    noop: dict[str, list[float]] = {"whole": [], "compose": []}
    code: dict[str, list[float]] = {"whole": [], "compose": []}
    startup = []  # `invoke --version`: what any task pays before it does anything (the machine's share)
    for _ in range(bench.runs):
        startup.append(bench.invoke("--version"))
        noop["whole"].append(bench.invoke(*BUILD_PROD))
        noop["compose"].append(bench.build_stage(PROD).compose)
    with restored(root / CODE_FILE):
        for number in range(bench.runs):
            change_code(root, number)
            code["whole"].append(bench.invoke(*BUILD_PROD))
            bench.remember_image(image)
            change_code(root, number)
            code["compose"].append(bench.build_stage(PROD).compose)
    requirements = []
    with restored(root / REQUIREMENTS_FILE):
        for number in range(bench.runs):
            append_line(root / REQUIREMENTS_FILE, f"{REQUIREMENTS_CHANGE} {time.time_ns()} {number}")
            requirements.append(bench.build_stage(PROD).suite)
    bench.build_stage(PROD)  # back to the checkout's tree (cached)
    return {"noop": noop, "code_only": code, "requirements": requirements, "invoke_version": startup}


def rebuild_rows(rebuild: Mapping[str, Any], results: Results) -> list[Row]:
    t, busy = REBUILD_TARGETS, load_hint(results)
    noop, noop_compose = median(rebuild["noop"]["whole"]), median(rebuild["noop"]["compose"])
    code, code_compose = median(rebuild["code_only"]["whole"]), median(rebuild["code_only"]["compose"])
    cold = median(results.get("cold", {}).get(PROD.name, []))
    around = "the Python and invoke start, the engine probes, git metadata and the zip check"
    noop_why = f"the compose build alone takes {fmt(noop_compose, 's', 2)}; the rest is {around}; {busy}"
    code_why = (
        f"the compose build alone takes {fmt(code_compose, 's', 2)}: the code stage (unzip + compileall), then the "
        f"layers after COPY --from=code, collectstatic included (a Django start-up); the rest is {around}; {busy}"
    )
    ratio = None if code is None or not cold else code / cold * 100
    ratio_why = code_why
    if code is not None and cold and code <= t["code_only_s"]:
        ratio_why = f"the cold build ({fmt(cold)}) is short: {t['code_only_ratio'] * 100:g} % of it is "
        ratio_why += fmt(cold * t["code_only_ratio"])
    command = "invoke build --stage prod"
    return [
        judged("noop_prod", f"{command}, nothing changed", noop, t["noop_s"], digits=2, why=noop_why),
        Row("noop_prod_compose", "  the same, compose build alone", fmt(noop_compose, "s", 2)),
        Row(
            "invoke_version",
            "  invoke --version alone (the interpreter and invoke start)",
            fmt(median(rebuild.get("invoke_version", [])), "s", 2),
        ),
        judged("code_only_prod", f"{command}, one .py changed", code, t["code_only_s"], digits=2, why=code_why),
        Row("code_only_prod_compose", "  the same, compose build alone", fmt(code_compose, "s", 2)),
        judged(
            "code_only_ratio",
            "code change / cold prod build",
            ratio,
            t["code_only_ratio"] * 100,
            unit="%",
            why=ratio_why,
        ),
        Row(
            "requirements_prod",
            "requirements change (the lock file changed: the virtualenv installed again), prod rebuild",
            fmt(median(rebuild["requirements"])),
        ),
    ]


REBUILD = Section(
    "rebuild",
    "invoke build --stage prod after no change, a code change, a requirements change",
    measure_rebuilds,
    rebuild_rows,
    REBUILD_TARGETS,
)
