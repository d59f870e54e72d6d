"""`invoke adopt PATH`: detect a Django project and commit its description, `[tool.lifecycle]`, into PATH.

Refusals come first and write nothing, one line each: PATH is not a folder, lies inside the suite's own
checkout, holds no manage.py, has uncommitted changes (unless --force), or names a settings module that does
not import (Django's own error line). Then PATH/pyproject.toml gets the table: created, appended to a file
that has none, or, where the user already has one, completed with the keys it lacks; a key the user set is
never changed (the report says where detection differs). The result is parsed back before it is written.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from lifecycle import scaffold
from lifecycle.detect import Detected, describe, detect
from lifecycle.errors import UserError
from lifecycle.runner import Result, Runner
from lifecycle.settings import PYPROJECT, ROOT, flatten, load_settings, project_table_values, validate
from lifecycle.settings_table import DEFAULTS, LAYER_PARTS

HEADER = (
    "# The lifecycle suite's settings for this project, written by `invoke adopt` and yours to edit: read below\n"
    "# .env and the environment (docs/adopt.md in the suite lists every key).\n"
)
# The Python a settings module is import-checked with: the project's own virtual environment, where it has one.
PROJECT_PYTHONS = (".venv/bin/python", "venv/bin/python", "env/bin/python")
# Run alone with the project's Python: imports a settings module, prints Django's own last error line.
CHECK_SETTINGS = Path(__file__).with_name("check_settings.py")
CHECK_ENVIRONMENT = {  # placeholders for what the containers set, so a settings module that requires them imports
    "DJANGO_SECRET_KEY": "adopt-check-placeholder",
    "SECRET_KEY": "adopt-check-placeholder",
    "DATABASE_URL": "mysql://app:app@db:3306/app",
    "DB_HOST": "db",
    "DB_NAME": "app",
    "DB_USER": "app",
    "DB_PASSWORD": "app",
    "APP_STAGE": "prod",
}


@dataclass(frozen=True)
class Written:
    path: Path
    text: str | None  # None: nothing to write
    added: tuple[str, ...]  # keys written
    kept: tuple[str, ...]  # the user's keys whose value differs from what was detected


# --------------------------------------------------------------------------------------------- refusals


def refuse_path(path: Path, suite_root: Path = ROOT) -> Path:
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; give the folder of your Django project")
    suite = suite_root.resolve()
    if path == suite or suite in path.parents:
        raise UserError(f"{path} is inside the suite's own checkout ({suite}); adopt a project outside it")
    return path


def git_status_argv(path: Path) -> list[str]:
    return ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=normal"]


def refuse_dirty(path: Path, run: Runner, force: bool) -> str | None:
    """Refuses uncommitted changes (adopt's own write must be reviewable as one diff); a note without git."""
    result = run(git_status_argv(path), warn=True, capture=True)
    if not result.ok:
        return f"{path} is not a git repository (or git is missing): adopt's changes cannot be shown as a diff"
    changed = [line for line in result.stdout.splitlines() if line.strip()]
    if changed and not force:
        first = changed[0][3:]
        raise UserError(
            f"{path} has {len(changed)} uncommitted change(s) (first: {first}); commit or stash them, or pass --force"
        )
    return f"--force: adopting over {len(changed)} uncommitted change(s)" if changed else None


def check_settings_argv(python: str, folder: Path, module: str) -> list[str]:
    return [python, str(CHECK_SETTINGS), str(folder), module]


def project_python(root: Path, given: str | None) -> str | None:
    if given:
        return given
    for candidate in PROJECT_PYTHONS:
        if (root / candidate).is_file():
            return str(root / candidate)
    return None


def refuse_broken_settings(
    found: Detected, run: Runner, python: str | None, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """Import each settings module (prod, dev, test) with the project's Python; refuse the first that fails."""
    if python is None:
        return ["settings not import-checked: no .venv/bin/python in the project; pass --python with Django installed"]
    env = {**CHECK_ENVIRONMENT, **environ}
    folder = found.root / found.manage_dir
    notes = []
    for module in dict.fromkeys(m for m in (found.settings_prod, found.settings_dev, found.settings_test) if m):
        result: Result = run(check_settings_argv(python, folder, module), env=env, warn=True, capture=True)
        said = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()[-200:]
        if result.return_code == 3:
            notes.append(f"settings {module} not fully checked: {said} is not installed here (the images install it)")
        elif not result.ok:
            raise UserError(f"settings module {module} does not import: {said or f'exit {result.return_code}'}")
    return notes


# Which Python each Django feature release supports (Django's FAQ); pip installs the newest release allowed.
DJANGO_PYTHONS = {
    "2.2": ("3.5", "3.9"),
    "3.0": ("3.6", "3.9"),
    "3.1": ("3.6", "3.9"),
    "3.2": ("3.6", "3.10"),
    "4.0": ("3.8", "3.10"),
    "4.1": ("3.8", "3.11"),
    "4.2": ("3.8", "3.12"),
    "5.0": ("3.10", "3.12"),
    "5.1": ("3.10", "3.13"),
    "5.2": ("3.10", "3.14"),
    "6.0": ("3.12", "3.14"),
    "6.1": ("3.12", "3.14"),  # Wagtail 8's project template asks for it
}
IMAGE_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")  # the official python image's supported tags


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def django_runs_on(series: str, python: str) -> bool:
    low, high = DJANGO_PYTHONS[series]
    return version_key(low) <= version_key(python) <= version_key(high)


def django_series(requirement: str) -> list[str] | None:
    """The Django feature releases a requirement line allows, oldest first; None when it cannot be read."""
    try:
        parsed = Requirement(requirement.split(";")[0].strip())
    except InvalidRequirement:
        return None
    if parsed.url:  # a direct reference: its version is not in the line
        return None
    specifier = parsed.specifier
    return [s for s in DJANGO_PYTHONS if any(specifier.contains(f"{s}.{patch}") for patch in range(40))]


def refuse_python_mismatch(found: Detected, py_version: str, base_image: str) -> list[str]:
    """Refuse a project whose Django or requires-python cannot run on the images' PY_VERSION, naming the one
    that would; notes for what cannot be told."""
    notes = []
    if found.requires_python:
        try:
            allowed = SpecifierSet(found.requires_python)
        except InvalidSpecifier:
            allowed = None
            notes.append(f"requires-python {found.requires_python!r} is not a version specifier; not checked")
        if allowed is not None and not allowed.contains(f"{py_version}.0"):
            fits = [p for p in IMAGE_PYTHONS if allowed.contains(f"{p}.0")]
            hint = f'set py-version = "{fits[-1]}" in [tool.lifecycle]' if fits else "no image Python fits"
            raise UserError(
                f"requires-python {found.requires_python} excludes the images' Python {py_version} "
                f"(PY_VERSION, {base_image}); {hint}"
            )
    if not found.django_requirement:
        return notes
    series = django_series(found.django_requirement)
    if not series:
        return [*notes, f"Django requirement {found.django_requirement!r} not understood; Python fit not checked"]
    if not any(django_runs_on(s, py_version) for s in series):
        newest = series[-1]
        low, high = DJANGO_PYTHONS[newest]
        fits = [p for p in IMAGE_PYTHONS if django_runs_on(newest, p)]
        hint = f'set py-version = "{fits[-1]}" in [tool.lifecycle]' if fits else "upgrade Django"
        raise UserError(
            f"{found.django_requirement} (Django {newest}) runs on Python {low} to {high}, not the images' "
            f"{py_version} (PY_VERSION, {base_image}); {hint}"
        )
    return notes


# --------------------------------------------------------------------------------------------- the table


def project_name(root: Path) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", root.name.lower()).strip("-._")
    return name or DEFAULTS["PROJ_NAME"]


def has_media(found: Detected) -> bool:
    """MEDIA_ROOT or MEDIA_URL set to something (Django's defaults are empty): the project takes uploads."""
    return any(value.strip().strip("'\"").strip() not in ("", "None") for value in found.media.values())


def table_of(found: Detected) -> dict[str, Any]:
    """The [tool.lifecycle] table (nested dicts, TOML types) that describes what was detected."""
    table: dict[str, Any] = {"proj-name": project_name(found.root), "project-dir": found.manage_dir}
    table["code"] = ["manage.py", *found.packages]
    table["tests"] = list(found.tests)
    if found.wsgi_app:
        table["wsgi-app"] = found.wsgi_app
    if found.requirements:
        table["requirements"] = list(found.requirements)
    # Without test requirements of its own the tests need the runtime's: never the default, django_site's own test
    # lock, which the suite's copy in the project holds (nox -s adopt: its Django 5.2 pins against Wagtail's 6.1).
    if found.test_requirements or found.requirements:
        table["requirements-test"] = list(found.test_requirements or found.requirements)
    table["build-packages"] = [*DEFAULTS["BUILD_PACKAGES"].split(), *found.build_packages]
    table["runtime-packages"] = [*DEFAULTS["RUNTIME_PACKAGES"].split(), *found.runtime_packages]
    if found.build_steps:
        table["build-steps"] = list(found.build_steps)
    if found.release_commands:
        table["release-commands"] = list(found.release_commands)
    table["health-path"] = DEFAULTS["HEALTH_PATH"]
    table["test-runner"] = found.test_runner
    table["media"] = has_media(found)
    settings = {"dev": found.settings_dev, "test": found.settings_test, "prod": found.settings_prod}
    if settings["test"] == settings["dev"]:
        del settings["test"]
    table["settings"] = {stage: module for stage, module in settings.items() if module}
    table["layer"] = {part.lower().replace("_", "-"): True for part in LAYER_PARTS}
    return table


def toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_scalar(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def render(table: Mapping[str, Any], name: str = "tool.lifecycle") -> str:
    """TOML text of a table: its scalar keys under its header, then each sub-table."""
    lines = [f"[{name}]"] + [f"{key} = {toml_scalar(v)}" for key, v in table.items() if not isinstance(v, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += ["", render(value, f"{name}.{key}").rstrip("\n")]
    return "\n".join(lines) + "\n"


def header_line(lines: Sequence[str], name: str) -> int | None:
    pattern = re.compile(rf"^\s*\[\s*{re.escape(name)}\s*\]\s*(#.*)?$")
    return next((i for i, line in enumerate(lines) if pattern.match(line)), None)


def merge(existing: str | None, table: Mapping[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """(new text or None, keys added, keys of the user's that differ): appends the table to a file without one;
    to a file with one, adds the missing keys after their table's header; never changes a key that is there."""
    if existing is None:
        return check_merge("", HEADER + render(table)), sorted(".".join(k) for k in flatten(table)), []
    try:
        parsed = tomllib.loads(existing)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"pyproject.toml is not valid TOML ({error}); fix it, then adopt again") from None
    mine = parsed.get("tool", {}).get("lifecycle")
    if mine is None:
        text = existing + ("" if existing.endswith("\n") or not existing else "\n") + "\n" + HEADER + render(table)
        return check_merge(existing, text), sorted(".".join(k) for k in flatten(table)), []
    theirs, wanted = flatten(mine), flatten(table)
    kept = sorted(".".join(k) for k, v in wanted.items() if k in theirs and theirs[k] != v)
    missing = {k: v for k, v in wanted.items() if k not in theirs}
    if not missing:
        return None, [], kept
    lines = existing.splitlines(keepends=True)
    top = header_line(lines, "tool.lifecycle")
    if top is None:
        raise UserError("pyproject.toml sets tool.lifecycle without a [tool.lifecycle] header; add the keys by hand")
    inserts: dict[int, list[str]] = {}
    for key_path, value in missing.items():
        sub = header_line(lines, "tool.lifecycle." + ".".join(key_path[:-1])) if len(key_path) > 1 else None
        at, key = (sub, key_path[-1]) if sub is not None else (top, ".".join(key_path))
        inserts.setdefault(at, []).append(f"{key} = {toml_scalar(value)}\n")
    for at in sorted(inserts, reverse=True):
        lines[at + 1 : at + 1] = inserts[at]
    text = check_merge(existing, "".join(lines))
    if flatten(tomllib.loads(text)["tool"]["lifecycle"]) != {**theirs, **missing}:
        raise UserError("adding the missing [tool.lifecycle] keys would change others; add them by hand")
    return text, sorted(".".join(k) for k in missing), kept


def check_merge(before: str, after: str) -> str:
    """The merged text, once it parses, every table outside [tool.lifecycle] reads as it did, and the table itself
    reads as valid settings."""
    try:
        parsed = tomllib.loads(after)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"merging [tool.lifecycle] would break pyproject.toml ({error}); add it by hand") from None
    values = project_table_values(parsed.get("tool", {}).get("lifecycle", {}))
    validate({**DEFAULTS, **values})
    old = tomllib.loads(before)
    for document in (parsed, old):
        document.get("tool", {}).pop("lifecycle", None)
        if document.get("tool") == {}:
            del document["tool"]
    if parsed != old:
        raise UserError("merging [tool.lifecycle] would change other tables of pyproject.toml; add it by hand")
    return after


# --------------------------------------------------------------------------------------------- the sequence


def adopt(
    path: Path,
    run: Runner,
    force: bool = False,
    python: str | None = None,
    dry: bool = False,
    suite_root: Path = ROOT,
    environ: Mapping[str, str] = os.environ,
    files: bool = True,
) -> list[str]:
    """Detect, refuse bad input, write the suite's files (Copier, the wheel; lifecycle/scaffold.py) unless `files` is
    off, then [tool.lifecycle]; the lines to print. Every refusal comes before the first write."""
    root = refuse_path(path, suite_root)
    found = detect(root)
    settings = load_settings(root=root, environ=environ)  # the project's own table and .env, if it has them
    notes = refuse_python_mismatch(found, settings["PY_VERSION"], settings.base_image)
    notes += [n for n in (refuse_dirty(root, run, force),) if n]
    notes += refuse_broken_settings(found, run, project_python(root, python), environ)
    target = root / PYPROJECT
    existing = target.read_text(encoding="utf-8") if target.is_file() else None
    text, added, kept = merge(existing, table_of(found))
    copying = scaffold.plan(root, suite_root) if files else None
    lines = [f"adopting {root}", *describe(found), *(f"note: {n}" for n in notes)]
    lines += [f"kept yours: {key} (detected differently)" for key in kept]
    if copying:
        lines += scaffold.write(copying, run, dry=dry)
    if text is None:
        return [*lines, f"{target}: [tool.lifecycle] already complete; nothing written"]
    if dry:
        return [*lines, f"dry run: would write {len(added)} key(s) of [tool.lifecycle] to {target}"]
    target.write_text(text, encoding="utf-8")
    verb = "created" if existing is None else "added to"
    return [*lines, f"{target}: {verb} [tool.lifecycle] ({len(added)} key(s)); commit it"]
