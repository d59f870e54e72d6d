"""What `invoke adopt` writes into a project besides [tool.lifecycle]: the suite's files, and the suite itself.

- The files that must live in a repository (the tasks.py/noxfile.py shims, scripts/bootstrap, .ci/run, docker/, the
  scripts and locks the images build from, .env.example) come from the Copier template in the suite's checkout
  (copier.yml, template/): `copier copy` the first time, `copier update` after that, a three-way merge between the
  template as adopted (the answers file records its commit and the suite's version), the template now, and the
  project's own edits. Where the project's change and the template's touch the same lines, the project's file is
  kept exactly as committed and Copier's three-way result, both sides between conflict markers, is written beside
  it as FILE.conflict; adopt lists each one. Nothing of the project's is overwritten silently.
- The library is the wheel (`invoke wheel`) the project pins: copied into .lifecycle-suite/wheels/ and named, with
  its sha256, in .lifecycle-suite/tools.txt (requirements/adopted.txt, the part of the suite's hash-locked host
  tooling a project needs: invoke, nox, packaging, uv; plus that line), which the
  project's scripts/bootstrap installs into its .venv. No copy of lifecycle/ lands in the project's tree.
- Lines the suite needs in .gitignore, .gitattributes and .dockerignore are added where missing; every other line is
  kept.

Copier runs without a terminal (stdin closed), with --defaults and --trust given explicitly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle import __version__, layout, wheel
from lifecycle.errors import UserError
from lifecycle.runner import Runner

TEMPLATE = Path("template")  # in the suite's checkout, beside copier.yml (its _subdirectory)
COPIER_CONFIG = Path("copier.yml")
ANSWERS = Path(".copier-answers.yml")
# Copier reads and writes its answers here (ignored, machine state) with _src_path the checkout adopting now; the
# committed ANSWERS names no machine's folder: _src_path is SOURCE_NAME, the version is suite_version and _commit.
WORKING_ANSWERS = Path(".lifecycle/copier-answers.yml")
SOURCE_NAME = "lifecycle-suite"
SRC_PATH_LINE = re.compile(r"^_src_path: .*$", re.MULTILINE)
ANSWERS_TEMPLATE = "{{ _copier_conf.answers_file }}.jinja"
TEMPLATE_SUFFIX = ".jinja"
IGNORE_HEADER = "# The container lifecycle suite (invoke adopt): machine state and local files, never committed."
GITIGNORE_LINES = (
    "__pycache__/",
    ".venv/",
    ".nox/",
    ".env",
    ".lifecycle/",
    "reports/",
    "updated_zip/",
    "backups/",
    "docker/certs/*",
    "!docker/certs/README.md",
    "*.private",
)
DOCKERIGNORE_HEADER = "# The container lifecycle suite (invoke adopt): kept out of the images' build context."
GITATTRIBUTES_HEADER = (
    "# The container lifecycle suite (invoke adopt): scripts run in Linux containers, where CRLF breaks them."
)
GITATTRIBUTES_LINES = ("*.sh text eol=lf", "bash_files/* text eol=lf", "scripts/* text eol=lf", ".ci/* text eol=lf",
                       "docker/** text eol=lf")  # fmt: skip
TOOLS_HEADER = (
    "# The container lifecycle suite's host tooling, hash-locked (invoke adopt writes this file; do not edit):\n"
    "# the suite's requirements/adopted.txt, then the suite's wheel (path, sha256); scripts/bootstrap installs it.\n"
)


@dataclass(frozen=True)
class Plan:
    """What one adoption writes, decided before anything is written."""

    root: Path
    suite_root: Path
    update: bool  # an answers file is there: copier update, else copier copy


def template_files(suite_root: Path) -> list[str]:
    """The files the template writes, relative to the project, as Copier renders them (links followed, .jinja
    suffixes dropped; the answers file under its name)."""
    base = suite_root / TEMPLATE
    found = []
    for folder, dirs, files in os.walk(base, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            relative = (Path(folder) / name).relative_to(base).as_posix()
            if relative == ANSWERS_TEMPLATE:
                relative = str(ANSWERS)
            found.append(relative.removesuffix(TEMPLATE_SUFFIX))
    return sorted(found)


def plan(root: Path, suite_root: Path) -> Plan:
    """Copy or update; a first adoption is refused, writing nothing, when a file the template writes is there."""
    if not (suite_root / COPIER_CONFIG).is_file():
        raise UserError(f"{suite_root} holds no {COPIER_CONFIG}: adopt from a checkout of the suite")
    update = (root / ANSWERS).is_file()
    if not update:
        taken = [name for name in template_files(suite_root) if (root / name).exists()]
        if taken:
            raise UserError(
                f"{root} already has {taken[0]}" + (f" and {len(taken) - 1} more of the suite's files" if len(taken) > 1
                else "") + f", not written by the suite ({ANSWERS} is missing); rename or remove it, then adopt again"
            )  # fmt: skip
    return Plan(root, suite_root, update)


def copier_argv(python: str, plan: Plan, version: str = __version__) -> list[str]:
    """`copier copy` or `copier update`, never asking (--defaults: the recorded answers; --trust: the suite's own
    template), from the suite's checkout as it is (HEAD, with its uncommitted changes); conflicts marked inline
    (and left unmerged in git's index), which `write` then moves aside."""
    answers = ["--defaults", "--trust", "--vcs-ref", "HEAD", "--data", f"suite_version={version}",
               "--answers-file", WORKING_ANSWERS.as_posix()]  # fmt: skip
    if plan.update:
        return [python, "-m", "copier", "update", *answers, "--conflict", "inline", str(plan.root)]
    return [python, "-m", "copier", "copy", *answers, str(plan.suite_root), str(plan.root)]


def with_source(answers: str, source: str) -> str:
    """The answers file's text with _src_path set to `source` (a JSON string is a YAML double-quoted scalar)."""
    line = f"_src_path: {json.dumps(source)}"
    if not SRC_PATH_LINE.search(answers):
        return f"{line}\n{answers}"
    return SRC_PATH_LINE.sub(lambda _: line, answers)


def stage_answers(plan: Plan) -> None:
    """Before Copier: an update reads the committed answers with _src_path this checkout, so any clone of the suite
    that holds the adopted commit (_commit) upgrades the project, wherever the first adoption ran."""
    working = plan.root / WORKING_ANSWERS
    working.parent.mkdir(parents=True, exist_ok=True)
    if plan.update:
        working.write_text(with_source((plan.root / ANSWERS).read_text(encoding="utf-8"), str(plan.suite_root)))
    else:
        working.unlink(missing_ok=True)


def commit_answers(plan: Plan) -> None:
    """After Copier: its answers, with _src_path SOURCE_NAME (no machine's folder), are the committed file."""
    working = plan.root / WORKING_ANSWERS
    (plan.root / ANSWERS).write_text(with_source(working.read_text(encoding="utf-8"), SOURCE_NAME), encoding="utf-8")
    working.unlink()


CONFLICT_SUFFIX = ".conflict"


def conflicted_argv(root: Path) -> list[str]:
    """The paths Copier's update left unmerged (conflict markers in them)."""
    return ["git", "-C", str(root), "diff", "--name-only", "--diff-filter=U"]


def restore_argv(root: Path, name: str) -> list[str]:
    """The project's committed file back, its index entry merged again."""
    return ["git", "-C", str(root), "checkout", "HEAD", "--", name]


def keep_theirs(root: Path, run: Runner, names: Iterable[str]) -> list[str]:
    """Each conflicted file: Copier's result (both sides, marked) to FILE.conflict, the project's own back in place;
    the lines to print."""
    lines = []
    for name in names:
        aside = root / f"{name}{CONFLICT_SUFFIX}"
        aside.write_bytes((root / name).read_bytes())
        run(restore_argv(root, name))
        lines.append(
            f"conflict: {root / name}: yours kept as committed; the template changed the same lines: both sides are "
            f"in {aside.name} beside it (<<<<<<< before updating: yours, >>>>>>> after updating: the "
            "template's); merge by hand, then delete it"
        )
    return lines


def tools_lock_text(suite_tools: str, built: wheel.Wheel) -> str:
    """The project's tools lock: the suite's, then the suite's wheel by its path from the project's root (pip reads
    it from the working directory, which bootstrap and nox set to the root) and sha256."""
    line = f"./{(layout.WHEELHOUSE / built.path.name).as_posix()} \\\n    --hash=sha256:{built.sha256}\n"
    return TOOLS_HEADER + suite_tools.rstrip("\n") + "\n" + line


def ignore_text(existing: str | None, wanted: Sequence[str], header: str) -> str | None:
    """existing with the wanted lines it lacks appended under header (None: nothing lacks); every line kept."""
    have = {line.strip() for line in (existing or "").splitlines()}
    missing = [line for line in wanted if line not in have]
    if not missing:
        return None
    head = existing or ""
    head += "\n" if head and not head.endswith("\n") else ""
    return head + ("\n" if head else "") + "\n".join([header, *missing]) + "\n"


def ignore_files(root: Path, suite_root: Path) -> dict[Path, str | None]:
    """The new text of the project's .gitignore, .gitattributes and .dockerignore (None: complete). A project without a
    .dockerignore gets the suite's as it is: the offline images' build keys cover it, so an identical file lets
    them be shared with the suite's checkout instead of rebuilt."""
    suite_dockerignore = (suite_root / ".dockerignore").read_text(encoding="utf-8")
    found = {}
    for name, header, wanted in (
        (".gitignore", IGNORE_HEADER, GITIGNORE_LINES),
        (".gitattributes", GITATTRIBUTES_HEADER, GITATTRIBUTES_LINES),
        (".dockerignore", DOCKERIGNORE_HEADER, [
            line.strip() for line in suite_dockerignore.splitlines() if line.strip() and not line.startswith("#")
        ]),
    ):  # fmt: skip
        path = root / name
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        if name == ".dockerignore" and existing is None:
            found[path] = suite_dockerignore
        else:
            found[path] = ignore_text(existing, wanted, header)
    return found


def install_wheel(root: Path, built: wheel.Wheel) -> Path:
    """The wheel into the project's wheelhouse, replacing any other build of the suite."""
    house = root / layout.WHEELHOUSE
    house.mkdir(parents=True, exist_ok=True)
    for old in house.glob("lifecycle_suite-*.whl"):
        if old.name != built.path.name:
            old.unlink()
    target = house / built.path.name
    shutil.copyfile(built.path, target)
    return target


def write_text_if_changed(path: Path, text: str | None) -> bool:
    if text is None or (path.is_file() and path.read_text(encoding="utf-8") == text):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


# What the template is made of, in the suite's checkout: uncommitted changes there reach the project through a commit
# that only Copier's scratch copy has, which a later `copier update` cannot find.
TEMPLATE_SOURCES = (
    "copier.yml",
    "template",
    "tasks.py",
    "noxfile.py",
    "scripts",
    "docker",
    "bash_files",
    "requirements",
)


def suite_status_argv(suite_root: Path) -> list[str]:
    return ["git", "-C", str(suite_root), "status", "--porcelain", "--", *TEMPLATE_SOURCES]


def uncommitted_template_note(listing: str) -> list[str]:
    changed = [line[3:] for line in listing.splitlines() if line.strip()]
    if not changed:
        return []
    return [
        f"note: the suite's checkout has {len(changed)} uncommitted change(s) to the template (first: {changed[0]}): "
        "they are adopted, but the template commit recorded exists only in Copier's scratch copy, so the next "
        "adopt cannot merge from it; commit them in the suite's checkout and adopt again"
    ]


def write(plan: Plan, run: Runner, dry: bool = False, python: str = sys.executable) -> list[str]:
    """Run Copier, then write the wheel, the tools lock and the ignore lines; the lines to print."""
    root, suite_root = plan.root, plan.suite_root
    argv = copier_argv(python, plan)
    notes = uncommitted_template_note(run(suite_status_argv(suite_root), warn=True, capture=True).stdout)
    if dry:
        wrote = f"the suite's wheel into {layout.WHEELHOUSE}/, {layout.ADOPTED_TOOLS}, lines of the ignore files"
        return [*notes, f"dry run: would run {' '.join(argv)}", f"dry run: would write {wrote}"]
    with tempfile.TemporaryDirectory(prefix="lifecycle-adopt-") as scratch:
        built = wheel.build(suite_root, run, out_dir=Path(scratch))
        assert built is not None  # not a dry run
        stage_answers(plan)
        # Copier asks nothing (--defaults) and gets no stdin, so nothing can wait for an answer.
        result = run(argv, warn=True, env={**os.environ, "COPIER_NO_TTY": "1"})
        if result.ok:
            commit_answers(plan)
        else:
            raise UserError(
                f"copier {'update' if plan.update else 'copy'} failed (exit {result.return_code}); see its output "
                "above" + ("; it needs a clean git tree (commit or stash your changes)" if plan.update else "")
            )
        target = install_wheel(root, built)
        lock = root / layout.ADOPTED_TOOLS
        write_text_if_changed(lock, tools_lock_text((suite_root / layout.ADOPTED_LOCK).read_text(), built))
    lines = [
        *notes,
        f"{root / ANSWERS}: suite {__version__} ({'updated' if plan.update else 'copied'} by Copier from "
        f"{suite_root / TEMPLATE}); commit it with the files listed above",
        f"{target}: the suite's wheel, sha256 {built.sha256}; pinned in {lock}",
    ]
    for path, text in ignore_files(root, suite_root).items():
        if write_text_if_changed(path, text):
            lines.append(f"{path}: added the lines the suite needs")  # .gitignore, .gitattributes, .dockerignore
    if plan.update:
        conflicted = run(conflicted_argv(root), capture=True).stdout.split()
        lines += keep_theirs(root, run, conflicted)
    return lines
