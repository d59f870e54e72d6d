"""The adopted project's dependencies as the images install them: hash-locked, from REQUIREMENTS/REQUIREMENTS_TEST.

Every image installs with `--require-hashes`. A project's sources are usually not locked, so before a build the
suite writes the locks the Dockerfile reads, `.lifecycle/build/locks/runtime.txt` and `test.txt` (the build
context's only window into `.lifecycle/`, see .dockerignore):

- a source that is one file already hash-locked (every requirement pinned `==` with `--hash`, as
  django_site's `requirements/*.txt` are) and holds a MySQL driver, gunicorn and WhiteNoise is copied as it is;
- anything else (plain `requirements.txt`, `-r` includes, `pyproject.toml`, `pyproject.toml[test]`) is compiled by
  `uv pip compile --generate-hashes` for the images' Python, with `mysqlclient` added when no MySQL driver is
  listed (and gunicorn and WhiteNoise, which the images serve with, and django-prometheus, the settings layer's
  metrics, unless LAYER_METRICS is off, when missing), and the test lock
  constrained to the runtime lock's pins. A compiled lock records the digest of its inputs (the sources, what
  they include, the Python version, what the suite adds): an unchanged input set is never compiled again (no
  index needed), and a changed one is compiled with the last lock as uv's preference, so only what changed moves.

The build key follows the locks (the Dockerfile COPYs them), so it follows the sources.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle import detect, detect_deps, staging
from lifecycle.commands import uv
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.runner import Result, Runner
from lifecycle.settings import table_name

BUILD_DIR = Path(".lifecycle") / "build"  # what the suite stages for the image build (the context sees it)
LOCK_DIR = BUILD_DIR / "locks"
MYSQL_DRIVERS = ("mysqlclient", "pymysql")
ADDED_DRIVER = "mysqlclient"  # what the images add to a project that lists no MySQL driver
# What stage and prod run every project with: gunicorn (docker/gunicorn.conf.py) and WhiteNoise (the settings
# layer's static files, LAYER_STATIC); added when the project does not list them.
SERVER_TOOLS = ("gunicorn", "whitenoise")
# The settings layer's /metrics (LAYER_METRICS, lifecycle_site/metrics.py): added unless switched off, within the pins
# the project's own sources resolve to; left out, with a note, when no version of it fits them (a Django newer than it
# supports), rather than moving the project's pins or failing the build.
METRICS_TOOL = "django-prometheus"
# What test-qa's entrypoint (bash_files/qa.sh) runs, per TEST_RUNNER, beside the project's test requirements.
TEST_TOOLS = {"pytest": ("coverage", "pytest", "pytest-django"), "django": ("coverage",)}
STAMP = "# inputs-sha256: "
BUILD_COMMAND = "invoke build"  # what an adopted project's lock header tells the reader to run: the build compiles it
_EXTRA = re.compile(r"^(?P<file>[^\[]+)\[(?P<extra>[A-Za-z0-9._-]+)\]$")
_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?==\S+")


@dataclass(frozen=True)
class Source:
    """One REQUIREMENTS item: a requirements file, or pyproject.toml with an optional extra (`pyproject.toml[test]`)."""

    path: str
    extra: str = ""

    @classmethod
    def parse(cls, item: str) -> Source:
        match = _EXTRA.match(item)
        return cls(match["file"], match["extra"]) if match else cls(item)

    @property
    def is_pyproject(self) -> bool:
        return Path(self.path).name == "pyproject.toml"

    def __str__(self) -> str:
        return f"{self.path}[{self.extra}]" if self.extra else self.path


def requirement_entries(text: str) -> list[str]:
    """The requirement entries of a requirements file, continuation lines joined, comments and blank lines dropped;
    option lines (`-r`, `--hash` alone, `-e`) are entries too."""
    entries, current = [], ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        current += line
        if current.strip():
            entries.append(current.strip())
        current = ""
    if current.strip():
        entries.append(current.strip())
    return entries


def is_hash_locked(text: str) -> bool:
    """Every entry is `name==version` with at least one `--hash`, and nothing else (no include, no editable)."""
    entries = requirement_entries(text)
    return bool(entries) and all(_PINNED.match(entry) and "--hash=" in entry for entry in entries)


def requirement_names(root: Path, sources: Sequence[Source]) -> set[str]:
    """The normalised names of every requirement the sources list (with their -r/-c includes)."""
    lines: list[str] = []
    for source in sources:
        if source.is_pyproject:
            project = detect_deps.read_pyproject((root / source.path).parent).get("project", {})
            lines += project.get("dependencies", [])
            lines += project.get("optional-dependencies", {}).get(source.extra, []) if source.extra else []
        else:
            lines += detect_deps.requirement_lines((root / source.path).resolve())
    return {detect_deps.requirement_name(line) for line in lines}


def input_files(root: Path, sources: Sequence[Source]) -> list[Path]:
    """The files the sources read: each source and, recursively, what it includes; a missing one is refused."""
    found: list[Path] = []

    def add(path: Path, named: str) -> None:
        if path in found:
            return
        if not path.is_file():
            raise UserError(f"{named} is missing; create it or fix requirements/requirements-test in [tool.lifecycle]")
        found.append(path)
        for included in detect_deps.includes(path):
            add(included, str(included.relative_to(root) if included.is_relative_to(root) else included))

    for source in sources:
        add((root / source.path).resolve(), source.path)
    return found


def inputs_digest(root: Path, sources: Sequence[Source], added: Sequence[str], python_version: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"python {python_version}\nsources {' '.join(map(str, sources))}\nadded {' '.join(added)}\n".encode())
    for path in input_files(root, sources):
        name = path.relative_to(root) if path.is_relative_to(root) else path
        digest.update(f"{name}\n".encode() + path.read_bytes() + b"\n")
    return digest.hexdigest()


def recorded_digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return next((line[len(STAMP) :].strip() for line in lines if line.startswith(STAMP)), None)


@dataclass(frozen=True)
class LockPlan:
    """How one lock is made: copied from a source that is already a lock, or compiled (with what is added)."""

    name: str  # runtime or test
    sources: tuple[Source, ...]
    copy_from: str | None  # a hash-locked source file, copied as it is
    added: tuple[str, ...]  # requirements the suite adds (mysqlclient, the test runner's tools)
    constraints: str | None = None  # the runtime lock (test only)

    @property
    def output(self) -> Path:
        return LOCK_DIR / f"{self.name}.txt"


def plan_locks(
    root: Path, requirements: Sequence[str], requirements_test: Sequence[str], runner: str, *, metrics: bool = True
) -> list[LockPlan]:
    """The runtime and test locks' plans from the settings' REQUIREMENTS, REQUIREMENTS_TEST, TEST_RUNNER and
    LAYER_METRICS."""
    runtime = tuple(map(Source.parse, requirements))
    test = tuple(map(Source.parse, requirements_test))
    if not runtime:
        raise UserError("REQUIREMENTS is empty; list the project's dependency files in [tool.lifecycle] requirements")
    names = requirement_names(root, runtime)
    added = () if names & set(MYSQL_DRIVERS) else (ADDED_DRIVER,)
    added += tuple(tool for tool in SERVER_TOOLS if tool not in names)
    added += (METRICS_TOOL,) if metrics and METRICS_TOOL not in names else ()

    def single_lock(sources: tuple[Source, ...]) -> str | None:
        if len(sources) != 1 or sources[0].is_pyproject:
            return None
        path = root / sources[0].path
        return sources[0].path if path.is_file() and is_hash_locked(path.read_text(encoding="utf-8")) else None

    runtime_copy = single_lock(runtime) if not added else None
    plans = [LockPlan("runtime", runtime, runtime_copy, () if runtime_copy else added)]
    test_names = requirement_names(root, (*runtime, *test))
    tools = tuple(tool for tool in TEST_TOOLS[runner] if tool not in test_names)
    test_copy = single_lock(test) if not added and not tools else None
    if test_copy:
        plans.append(LockPlan("test", test, test_copy, ()))
    else:
        # The test lock holds the runtime sources too (test-qa installs it alone over the runtime virtualenv).
        plans.append(LockPlan("test", (*runtime, *test), None, (*added, *tools), str(LOCK_DIR / "runtime.txt")))
    return plans


def write_lock(
    run: Runner,
    root: Path,
    plan: LockPlan,
    python_version: str,
    *,
    dry: bool = False,
    say: Callable[[str], None] = print,
) -> bool:
    """Make one lock as planned; True when it was (re)written, False when the one there is current."""
    output = root / plan.output
    if plan.copy_from:
        data = (root / plan.copy_from).read_bytes()
        if dry:
            return not (output.is_file() and output.read_bytes() == data)
        return staging.write_if_changed(output, data)
    digest = inputs_digest(root, plan.sources, plan.added, python_version)
    if recorded_digest(output) == digest:
        return False
    say(f"lock: compiling {plan.output} from {', '.join(map(str, plan.sources))}" +
        (f" (+ {', '.join(plan.added)})" if plan.added else ""))  # fmt: skip
    # The project's own resolution first: what the suite adds for metrics may never move one of its pins (a Django
    # newer than django-prometheus supports stays as it is, and the metrics are left out instead).
    result = compile_lock(run, root, plan, without_metrics(plan.added), python_version, dry=dry)
    if dry:
        return True
    if not result.ok:
        raise UserError(f"the {plan.name} requirements do not resolve: {uv_reason(result)}; fix {plan.sources[0]}")
    if METRICS_TOOL in plan.added:
        pins = write_pins(root, plan)
        tried = compile_lock(run, root, plan, plan.added, python_version, constraints=str(pins))
        if not tried.ok:  # uv writes no output when it finds no solution: the project's own lock stays
            say(f"lock: note: {METRICS_TOOL} does not fit {plan.sources[0]}'s pins ({uv_reason(tried)}): the images "
                "serve no /metrics (layer.metrics = false in [tool.lifecycle] skips this try)")  # fmt: skip
    text = output.read_text(encoding="utf-8")
    output.write_text(stamped(text, digest), encoding="utf-8")
    return True


def without_metrics(added: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for name in added if name != METRICS_TOOL)


def write_pins(root: Path, plan: LockPlan) -> Path:
    """LOCK_DIR/NAME.pins.txt: `name==version[ ; marker]` of every package the plan's lock (and its constraints)
    pinned, without the hashes."""
    texts = [(root / plan.output).read_text(encoding="utf-8")]
    texts += [(root / plan.constraints).read_text(encoding="utf-8")] if plan.constraints else []
    entries = [entry for text in texts for entry in requirement_entries(text) if _PINNED.match(entry)]
    pins = {entry.split(" --hash", 1)[0].strip() for entry in entries}
    path = LOCK_DIR / f"{plan.name}.pins.txt"
    (root / path).write_text("".join(f"{pin}\n" for pin in sorted(pins)), encoding="utf-8")
    return path


def compile_lock(
    run: Runner,
    root: Path,
    plan: LockPlan,
    added: Sequence[str],
    python_version: str,
    *,
    constraints: str | None = None,
    dry: bool = False,
) -> Result:
    """`uv pip compile` of the plan's sources plus `added` (written to LOCK_DIR/NAME.added.in) into its output,
    within the plan's constraints or the ones given."""
    added_in = LOCK_DIR / f"{plan.name}.added.in"
    if not dry:
        (root / plan.output).parent.mkdir(parents=True, exist_ok=True)
        (root / added_in).write_text("".join(f"{name}\n" for name in added), encoding="utf-8")
    inputs = [source.path for source in plan.sources] + ([str(added_in)] if added else [])
    extras = sorted({source.extra for source in plan.sources if source.extra})
    argv = uv.compile_lock(
        root,
        inputs,
        str(plan.output),
        python_version,
        compile_command=BUILD_COMMAND,
        extras=extras,
        constraints=constraints or plan.constraints,
    )
    return run(argv, warn=True, capture=True)


def uv_reason(result: Result) -> str:
    """uv's last line of a failed resolution, without the tree it draws its reasons in."""
    last = (result.stderr.strip().splitlines() or ["uv pip compile failed"])[-1]
    return last.strip().lstrip("\u2570\u2500\u25b6\u00d7 ").strip()


def stamped(text: str, digest: str) -> str:
    lines = [line for line in text.splitlines() if not line.startswith(STAMP)]
    header = 2 if lines and lines[0].startswith("# This file was autogenerated by uv") else 0
    return "\n".join([*lines[:header], STAMP + digest, *lines[header:]]) + "\n"


def ensure_locks(
    run: Runner,
    root: Path,
    values: Mapping[str, str],
    *,
    dry: bool = False,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Write the runtime and test locks the image build reads (see the module docstring); returns their paths."""
    metrics = str(values.get("LAYER_METRICS", "true")).strip().lower() not in ("0", "false", "no", "off")
    plans = plan_locks(
        root,
        values["REQUIREMENTS"].split(),
        values["REQUIREMENTS_TEST"].split(),
        values["TEST_RUNNER"],
        metrics=metrics,
    )
    for plan in plans:
        write_lock(run, root, plan, values["PY_VERSION"], dry=dry, say=say)
        if not dry:
            refuse_missing_system_packages(plan.output, (root / plan.output).read_text(encoding="utf-8"), values)
    return [root / plan.output for plan in plans]


def refuse_missing_system_packages(lock: Path, text: str, values: Mapping[str, str]) -> None:
    """A locked dependency that needs Debian packages the settings lack (detect.SYSTEM_PACKAGES), also one that came
    in through another's extra (`django-spirit[files]` -> python-magic -> libmagic), which adopt cannot see: one line
    naming the packages and the setting, before anything is built."""
    names = sorted({detect_deps.requirement_name(e) for e in requirement_entries(text) if not e.startswith("-")})
    for name in names:
        build, runtime = detect.SYSTEM_PACKAGES.get(name, ((), ()))
        for setting, needed in (("build-packages", build), ("runtime-packages", runtime)):
            missing = [package for package in needed if package not in values[table_name((setting,))].split()]
            if missing:
                raise UserError(
                    f"{name} (in {lock}) needs the Debian package(s) {' '.join(missing)}: add them to {setting} in "
                    "[tool.lifecycle] (nothing was built)"
                )


def stage_locks(ctx: Context) -> list[Path]:
    """ensure_locks for a sequencer: the context's checkout, settings, runner, dry-run flag and voice."""
    settings = ctx.settings
    return ensure_locks(ctx.run, settings.root, settings.values, dry=ctx.dry, say=ctx.say)


TESTS_DIR = BUILD_DIR / "tests"
NOT_STAGED = {"__pycache__", ".pytest_cache"}  # what a test run leaves beside the tests


def stage_tests(root: Path, code_root: Path, paths: Sequence[str]) -> list[str]:
    """Mirror TESTS (paths in PROJECT_DIR: test folders, pytest's configuration) into .lifecycle/build/tests/, which
    test-qa copies over the code; returns what was staged. A path that is not there is refused, naming it. Two builds
    of the checkout at once stage it side by side (lifecycle/staging.py)."""
    wanted: dict[str, bytes] = {}
    for relative in paths:
        source = code_root / relative
        if Path(relative).is_absolute() or ".." in Path(relative).parts or not source.exists():
            raise UserError(f"TESTS path {relative!r} is not in {code_root}; fix tests in [tool.lifecycle]")
        files = sorted(f for f in source.rglob("*") if f.is_file()) if source.is_dir() else [source]
        for file in files:
            inside = file.relative_to(code_root)
            if not (NOT_STAGED & set(inside.parts)) and file.suffix != ".pyc":
                wanted[inside.as_posix()] = file.read_bytes()
    target = root / TESTS_DIR
    target.mkdir(parents=True, exist_ok=True)
    staging.mirror(wanted, target)
    return list(paths)
