"""The release command a repository declares for another platform (a Procfile `release:` line, heroku.yml), as the
manage.py commands it runs. Pure functions over a folder (lifecycle/detect.py puts them together).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path


def manage_commands(line: str) -> tuple[list[str], list[str]]:
    """(manage.py commands of a shell line, the parts that are not manage.py commands)."""
    commands, others = [], []
    for part in re.split(r"&&|;|\|\|", line):
        words = shlex.split(part, comments=True) if part.strip() else []
        if not words:
            continue
        at = next((i for i, w in enumerate(words) if w.endswith("manage.py")), None)
        if at is None or at + 1 >= len(words):
            others.append(part.strip())
        else:
            commands.append(shlex.join(words[at + 1 :]))
    return commands, others


def release_lines(root: Path) -> list[str]:
    lines = []
    procfile = root / "Procfile"
    if procfile.is_file():
        for line in procfile.read_text(encoding="utf-8", errors="replace").splitlines():
            kind, _, command = line.partition(":")
            if kind.strip() == "release" and command.strip():
                lines.append(command.strip())
    heroku = root / "heroku.yml"
    if heroku.is_file():
        lines += heroku_release(heroku.read_text(encoding="utf-8", errors="replace"))
    return lines


def heroku_release(text: str) -> list[str]:
    """The `release: command:` entries of heroku.yml (a list or one string), read without a YAML parser."""
    found: list[str] = []
    in_release = in_command = False
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip())
        line = raw.strip()
        if indent == 0:
            in_release, in_command = line.rstrip(":") == "release", False
        elif in_release and line.startswith("command:"):
            value = line.removeprefix("command:").strip()
            in_command = not value
            if value:
                found.append(value.strip("\"'"))
        elif in_command and line.startswith("- "):
            found.append(line[2:].strip().strip("\"'"))
        elif in_command and not line.startswith("- "):
            in_command = False
    return found
