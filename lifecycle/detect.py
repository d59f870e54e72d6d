"""What an existing Django repository is made of, read from its files: pure functions over a folder, no imports
of the project's code and nothing written.

`detect(root)` finds manage.py (the root or a subfolder), the settings module per stage (split settings such as
`settings/{base,dev,production}.py`: production for stage and prod, dev for dev), WSGI_APPLICATION, the
dependency sources (requirements*.txt with their -r includes, requirements/*.txt, pyproject's
[project.dependencies]), the test runner, the static and media settings and a release command declared for
another platform (a Procfile `release:` line, heroku.yml). `describe()` is what `invoke adopt` prints.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.detect_deps import dependency_sources, read_pyproject, requirement_lines, requirement_name
from lifecycle.detect_release import manage_commands, release_lines
from lifecycle.detect_settings import (
    assignments,
    choose_settings,
    literal,
    module_file,
    module_name,
    settings_beside_wsgi,
    settings_default,
    settings_siblings,
    settings_steps,
    wsgi_reference,
)
from lifecycle.errors import UserError

# Folders that never hold the project's own code.
SKIPPED_DIRS = {".git", ".hg", ".venv", "venv", "env", ".tox", ".nox", "node_modules", "__pycache__", "site-packages"}
MANAGE_DEPTH = 2  # manage.py at the root, in src/, or in src/project/

# Commands the suite runs itself, so a platform's release line needs no copy of them.
SUITE_RELEASE_COMMANDS = ("migrate",)
# Debian packages (trixie names, the images' release) a dependency needs beyond the images' own, to build it and
# to run it: (build, runtime). A missing .so only shows at import time in prod, so name them at adoption.
SYSTEM_PACKAGES = {
    "pycurl": (("libcurl4-openssl-dev", "libssl-dev"), ("libcurl4t64",)),
    "psycopg2": (("libpq-dev",), ("libpq5",)),
    "python-magic": ((), ("libmagic1t64",)),
}


@dataclass(frozen=True)
class Detected:
    root: Path
    manage_dir: str  # "." or the subfolder that holds manage.py, relative to root
    settings_dev: str
    settings_prod: str
    settings_test: str
    settings_modules: tuple[str, ...]  # every settings module found, for the report
    wsgi_app: str  # gunicorn form: package.module:name
    packages: tuple[str, ...]  # top-level packages next to manage.py: the code the zip carries
    requirements: tuple[str, ...]  # runtime sources, relative to root
    test_requirements: tuple[str, ...]
    test_runner: str  # "pytest" or "django"
    static: dict[str, str]
    media: dict[str, str]
    release_commands: tuple[str, ...]  # manage.py commands run once per deploy after migrate
    build_steps: tuple[str, ...] = ()  # manage.py commands run at image build (compress)
    tests: tuple[str, ...] = ()  # test folders and pytest configuration outside the code, for test-qa
    build_packages: tuple[str, ...] = ()  # Debian packages beyond the images' own (SYSTEM_PACKAGES)
    runtime_packages: tuple[str, ...] = ()
    django_requirement: str = ""
    requires_python: str = ""  # pyproject.toml [project] requires-python
    notes: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------------------------- manage.py


def walk_dirs(root: Path, depth: int):
    """root and its subfolders down to `depth`, shallowest first, sorted, without SKIPPED_DIRS."""
    level = [root]
    for _ in range(depth + 1):
        yield from level
        level = sorted(
            child
            for folder in level
            for child in folder.iterdir()
            if child.is_dir() and child.name not in SKIPPED_DIRS and not child.name.startswith(".")
        )


def find_manage_py(root: Path) -> Path:
    """The shallowest manage.py under root; refuses none, and two at the same depth (which one is ambiguous)."""
    found: list[Path] = []
    for folder in walk_dirs(root, MANAGE_DEPTH):
        if (folder / "manage.py").is_file():
            if found and len(found[0].relative_to(root).parts) < len((folder / "manage.py").relative_to(root).parts):
                break
            found.append(folder / "manage.py")
    if not found:
        raise UserError(f"{root} is not a Django project: no manage.py in it or {MANAGE_DEPTH} folders down")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in found)
        raise UserError(f"{root} has more than one manage.py ({names}); adopt the folder of the one you deploy")
    return found[0]


# --------------------------------------------------------------------------------------------- tests
TEST_FOLDERS = ("tests", "test")
# Files that configure pytest, and the section that says they do (None: the file itself is pytest's).
PYTEST_CONFIG = {"pytest.ini": None, "conftest.py": None, "pyproject.toml": "[tool.pytest.ini_options]",
                 "setup.cfg": "[tool:pytest]", "tox.ini": "[pytest]"}  # fmt: skip


def test_paths(base: Path, packages: Sequence[str]) -> list[str]:
    """What test-qa needs beside the code: test folders that are not packages of the code, and the files that
    configure pytest, in the folder of manage.py."""
    found = [name for name in TEST_FOLDERS if (base / name).is_dir() and name not in packages]
    for name, section in PYTEST_CONFIG.items():
        path = base / name
        if path.is_file() and (section is None or section in path.read_text(encoding="utf-8", errors="replace")):
            found.append(name)
    return found


def pytest_django_settings(root: Path) -> str | None:
    """The DJANGO_SETTINGS_MODULE pytest-django is configured with (pytest.ini, pyproject, setup.cfg, tox.ini);
    '' when pytest is configured for Django without naming one; None when it is not configured."""
    options = read_pyproject(root).get("tool", {}).get("pytest", {}).get("ini_options")
    sections = [options] if options is not None else []
    for name, section in (("pytest.ini", "pytest"), ("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        path = root / name
        if path.is_file():
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
            except configparser.Error:
                continue
            if parser.has_section(section):
                sections.append(dict(parser.items(section)))
    for section in sections:
        if section.get("DJANGO_SETTINGS_MODULE") or section.get("django_settings_module"):
            return str(section.get("DJANGO_SETTINGS_MODULE") or section.get("django_settings_module")).strip()
        addopts = section.get("addopts", "")
        addopts = " ".join(addopts) if isinstance(addopts, list) else str(addopts)
        match = re.search(r"--ds[= ](\S+)", addopts)
        if match:
            return match.group(1)
    return None


# --------------------------------------------------------------------------------------------- system packages


def system_packages(requirements: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(build, runtime) Debian packages the dependencies need beyond the images' own."""
    needed = [SYSTEM_PACKAGES[name] for name in sorted(requirements) if name in SYSTEM_PACKAGES]
    build = tuple(dict.fromkeys(p for b, _ in needed for p in b))
    runtime = tuple(dict.fromkeys(p for _, r in needed for p in r))
    return build, runtime


# --------------------------------------------------------------------------------------------- the whole


def detect(root: Path) -> Detected:
    root = root.resolve()
    manage = find_manage_py(root)
    base = manage.parent
    notes: list[str] = []
    manage_module = settings_default(manage)
    wsgi_files = [p for p in base.glob("*/wsgi.py") if p.is_file()] + [p for p in base.glob("*/*/wsgi.py")]
    wsgi_module_of_file = {module_name(base, p): settings_default(p) for p in sorted(wsgi_files)}
    wsgi_settings = next((m for m in wsgi_module_of_file.values() if m), None)
    if manage_module is None and wsgi_settings is None:
        # Computed, not written (Mezzanine: "%s.settings" % real_project_name("mysite")): the settings beside wsgi.py.
        wsgi_settings = settings_beside_wsgi(base, sorted(wsgi_files))
        if wsgi_settings:
            notes.append(f"manage.py and wsgi.py compute DJANGO_SETTINGS_MODULE; taken: {wsgi_settings} (beside wsgi)")
    if manage_module is None and wsgi_settings is None:
        notes.append("manage.py sets no DJANGO_SETTINGS_MODULE default; name the settings in [tool.lifecycle.settings]")
    pytest_settings = pytest_django_settings(root)
    if pytest_settings is None and base != root:
        pytest_settings = pytest_django_settings(base)
    candidates = sorted({s for m in (manage_module, wsgi_settings) if m for s in settings_siblings(base, m)})
    chosen = choose_settings(manage_module, wsgi_settings, candidates)
    if pytest_settings:
        chosen["test"] = pytest_settings
    for stage, module in chosen.items():
        if module and module_file(base, module) is None:
            notes.append(f"settings module {module} ({stage}) is not a file under {base.relative_to(root) or '.'}")
    values = assignments(base, chosen["prod"]) if chosen["prod"] else {}
    wsgi_setting = literal(values.get("WSGI_APPLICATION"))
    if isinstance(wsgi_setting, str):
        wsgi_app = wsgi_reference(wsgi_setting)
    elif wsgi_module_of_file:
        wsgi_app = f"{next(iter(wsgi_module_of_file))}:application"
    else:
        wsgi_app = ""
        notes.append("no WSGI_APPLICATION and no wsgi.py found; set wsgi-app in [tool.lifecycle]")
    runtime, test, lines = dependency_sources(root)
    if not runtime:
        notes.append("no requirements*.txt, requirements/*.txt or [project.dependencies]; list them in requirements")
    names = {requirement_name(line): line for line in lines}
    if "mysqlclient" not in names and "pymysql" not in names:
        notes.append("no MySQL driver in the dependencies: the images add mysqlclient")
    all_lines = lines + [line for t in test if not t.startswith("pyproject") for line in requirement_lines(root / t)]
    uses_pytest = pytest_settings is not None or "pytest-django" in map(requirement_name, all_lines)
    runner = "pytest" if uses_pytest else "django"
    release: list[str] = []
    for line in release_lines(root):
        commands, others = manage_commands(line)
        release += [c for c in commands if c.split()[0] not in SUITE_RELEASE_COMMANDS]
        notes += [f"release step not a manage.py command, not carried over: {o}" for o in others]
    build_steps, more_release, more_notes = settings_steps(values, names)
    release += more_release
    notes += more_notes
    build_packages, runtime_packages = system_packages(names)
    packages = sorted(
        p.name for p in base.iterdir() if p.is_dir() and (p / "__init__.py").is_file() and p.name not in SKIPPED_DIRS
    )
    return Detected(
        root=root,
        manage_dir=str(base.relative_to(root)) if base != root else ".",
        settings_dev=chosen["dev"],
        settings_prod=chosen["prod"],
        settings_test=chosen["test"],
        settings_modules=tuple(sorted({m for m in (manage_module, wsgi_settings, *candidates) if m})),
        wsgi_app=wsgi_app,
        packages=tuple(packages),
        requirements=tuple(runtime),
        test_requirements=tuple(test),
        test_runner=runner,
        static={k: values[k] for k in ("STATIC_URL", "STATIC_ROOT", "STATICFILES_DIRS", "STORAGES") if k in values},
        media={k: values[k] for k in ("MEDIA_URL", "MEDIA_ROOT") if k in values},
        release_commands=tuple(dict.fromkeys(release)),
        build_steps=tuple(build_steps),
        tests=tuple(test_paths(base, packages)),
        build_packages=build_packages,
        runtime_packages=runtime_packages,
        django_requirement=names.get("django", ""),
        requires_python=str(read_pyproject(root).get("project", {}).get("requires-python", "")),
        notes=tuple(notes),
    )


def describe(found: Detected) -> list[str]:
    """What `invoke adopt` prints: one line per fact (long settings expressions shortened), the notes last."""

    def short(text: str, width: int = 60) -> str:
        return text if len(text) <= width else text[: width - 3] + "..."

    def joined(items, empty: str = "(none)", sep: str = ", ") -> str:
        return sep.join(items) or empty

    static = [f"{k} = {short(v)}" for k, v in found.static.items()]
    media = [f"{k} = {short(v)}" for k, v in found.media.items()]
    runner = "pytest (pytest-django)" if found.test_runner == "pytest" else "manage.py test"
    lines = [
        f"manage.py:        {Path(found.manage_dir) / 'manage.py'}",
        f"settings:         dev {found.settings_dev}, test {found.settings_test}, stage/prod {found.settings_prod}",
        f"settings modules: {joined(found.settings_modules)}",
        f"WSGI app:         {found.wsgi_app or '(none)'}",
        f"code:             manage.py, {joined(found.packages)}",
        f"tests:            {joined(found.tests, '(inside the code)')}",
        f"requirements:     {joined(found.requirements)}; tests: {joined(found.test_requirements)}",
        f"Django:           {found.django_requirement or 'not pinned in the runtime requirements'}",
        f"test runner:      {runner}",
        f"static:           {joined(static, 'not set (the layer sets it)')}",
        f"media:            {joined(media, 'none')}",
        f"release commands: {joined(found.release_commands, sep='; ')}",
        f"build steps:      {joined(found.build_steps, sep='; ')}",
        f"system packages:  build {joined(found.build_packages, '(the images own)', ' ')}; "
        f"run {joined(found.runtime_packages, '(the images own)', ' ')}",
    ]
    return lines + [f"note: {note}" for note in found.notes]
