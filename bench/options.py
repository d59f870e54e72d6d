"""Option parsing: `nox -s bench -- --runs N --duration S --skip SECTION --strict`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.sections import SECTIONS


def parse_options(posargs: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s bench --", description="Benchmark the lifecycle.")
    parser.add_argument("--runs", type=int, default=3, help="Samples per timed value (medians). Default: 3.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per load run. Default: 10.")
    sections = "; ".join(f"{section.name}: {section.about}" for section in SECTIONS)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[section.name for section in SECTIONS],
        help=f"Skip a section (repeatable). Default: none. Sections: {sections}.",
    )
    parser.add_argument(
        "--backup-mb",
        type=int,
        default=200,
        help="MB of generated data the backup section backs up and restores (2000: the large-database case the "
        "physical method is for; needs ~4x that on disk). Default: 200.",
    )
    parser.add_argument("--strict", action="store_true", help="Exit 1 when a target is missed. Default: off.")
    options = parser.parse_args(list(posargs))
    if options.runs < 1 or options.duration < 1 or options.backup_mb < 1:
        parser.error("--runs, --duration and --backup-mb must be at least 1")
    return options
