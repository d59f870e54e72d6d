"""Nox sessions of the container lifecycle suite: `nox --list` shows them.

A shim, written by `invoke adopt` (template/): the sessions live in the suite's package, lifecycle.cli.sessions.
"""

import sys
from pathlib import Path

import nox

nox.needs_version = ">=2026.10.20"
sys.path.insert(0, str(Path(__file__).parent))  # nox, unlike invoke, does not put the noxfile's folder on the path

import lifecycle.cli.sessions  # noqa: E402, F401 - registers the sessions and the default set
