"""Django settings modules, read from their files and never imported: the DJANGO_SETTINGS_MODULE a script sets,
the modules of a split-settings package, which module is for which stage, a module's top-level assignments (star
imports of the project's own modules first), and what the prod settings imply (build steps, release commands).
Part of `invoke adopt`'s detection (lifecycle/detect.py).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

# Settings modules by their last name: which stage each one is for.
PROD_NAMES = ("production", "prod", "live", "deploy", "deployment", "settings_prod", "prod_settings")
DEV_NAMES = ("dev", "development", "local", "settings_dev", "dev_settings", "local_settings")
TEST_NAMES = ("test", "tests", "testing", "ci", "settings_test", "test_settings")
DATABASE_CACHE = "django.core.cache.backends.db.DatabaseCache"


def parse_python(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def settings_default(path: Path) -> str | None:
    """The DJANGO_SETTINGS_MODULE a script sets: `os.environ.setdefault(NAME, "x")` or `os.environ[NAME] = "x"`."""
    tree = parse_python(path)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and _constant(node.args[0]) == "DJANGO_SETTINGS_MODULE"
            and isinstance(_constant(node.args[1]), str)
        ):
            return _constant(node.args[1])
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if (
                isinstance(target, ast.Subscript)
                and _constant(target.slice) == "DJANGO_SETTINGS_MODULE"
                and isinstance(_constant(node.value), str)
            ):
                return _constant(node.value)
    return None


def _constant(node: ast.AST) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


# --------------------------------------------------------------------------------------------- settings modules
def module_file(base: Path, module: str) -> Path | None:
    """The file of a dotted module under base: a/b.py or a/b/__init__.py."""
    path = base.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(base: Path, path: Path) -> str:
    relative = path.relative_to(base).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def settings_siblings(base: Path, module: str) -> list[str]:
    """The modules of a split-settings package (`mysite.settings.dev` -> base, dev, production, ...)."""
    path = module_file(base, module)
    if path is None:
        return []
    package = path.parent
    if not (package / "__init__.py").is_file():
        return []
    # mysite.settings as a package (settings/__init__.py beside dev.py...), or a module inside such a package.
    split = path.name == "__init__.py" or package.name == "settings"
    if not split and path.stem not in (*PROD_NAMES, *DEV_NAMES, *TEST_NAMES, "base", "common"):
        return []
    return [module_name(base, f) for f in sorted(package.glob("*.py")) if f.name != "__init__.py"]


def settings_beside_wsgi(base: Path, wsgi_files: list[Path]) -> str | None:
    """`pkg.settings` for the first `pkg/wsgi.py` with a `settings.py` or a `settings/` package beside it."""
    for wsgi in wsgi_files:
        if (wsgi.parent / "settings.py").is_file() or (wsgi.parent / "settings" / "__init__.py").is_file():
            return module_name(base, wsgi.parent / "settings.py")
    return None


def stage_of(module: str) -> str | None:
    last = module.rsplit(".", 1)[-1]
    for stage, names in (("prod", PROD_NAMES), ("dev", DEV_NAMES), ("test", TEST_NAMES)):
        if last in names:
            return stage
    return None


def choose_settings(manage_module: str | None, wsgi_module: str | None, candidates: list[str]) -> dict[str, str]:
    """Settings per stage from what manage.py and wsgi.py name and the modules beside them.

    prod: a module named like production, else what wsgi.py names, else manage.py's; dev: a module named like dev,
    else manage.py's; test: a module named like test, else dev's.
    """
    by_stage: dict[str, str] = {}
    for module in [m for m in (manage_module, wsgi_module) if m] + candidates:
        stage = stage_of(module)
        if stage and stage not in by_stage:
            by_stage[stage] = module
    fallback = manage_module or wsgi_module or ""
    prod = by_stage.get("prod") or (wsgi_module if wsgi_module and stage_of(wsgi_module) is None else None) or fallback
    dev = by_stage.get("dev") or manage_module or prod
    return {"dev": dev, "prod": prod, "test": by_stage.get("test") or dev}


def assignments(base: Path, module: str, seen: frozenset[str] = frozenset()) -> dict[str, str]:
    """NAME -> source text of each top-level assignment of a settings module, star imports of the project's own
    modules first (as Python runs them), so `from .base import *` then `DEBUG = False` gives DEBUG 'False'."""
    path = module_file(base, module)
    tree = parse_python(path) if path else None
    if tree is None or module in seen:
        return {}
    package = module if path and path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            source = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                source = ".".join([*parent, source] if source else parent)
            found.update(assignments(base, source, seen | {module}))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = ast.unparse(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            found[node.target.id] = ast.unparse(node.value)
    return found


def literal(source: str | None) -> Any:
    try:
        return ast.literal_eval(source) if source is not None else None
    except (ValueError, SyntaxError):
        return None


def wsgi_reference(value: str) -> str:
    """WSGI_APPLICATION's dotted path in gunicorn's form: mysite.wsgi.application -> mysite.wsgi:application."""
    module, _, name = value.rpartition(".")
    return f"{module}:{name}"


# --------------------------------------------------------------------------------------------- what settings imply
def settings_steps(values: dict[str, str], requirements: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(build steps, release commands, notes) the prod settings call for: django-compressor's offline
    compression at build (a read-only image cannot compress on the first request), a database cache's table."""
    build, release, notes = [], [], []
    apps = values.get("INSTALLED_APPS", "")
    if "'compressor'" in apps or '"compressor"' in apps or "django-compressor" in requirements:
        if literal(values.get("COMPRESS_OFFLINE")) is True:
            build.append("compress")
        else:
            notes.append(
                "django-compressor without COMPRESS_OFFLINE = True: the read-only prod image cannot compress on "
                "the first request; set it in the prod settings and add 'compress' to build-steps"
            )
    if DATABASE_CACHE in values.get("CACHES", ""):
        release.append("createcachetable")
    return build, release, notes
