"""The suite itself: adopt a project, build the library's wheel, write the generated docs, build the offline
images (images.*), lock the requirements (deps.*)."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Exit, task

from lifecycle.cli.tasks.common import context, local, user_errors
from lifecycle.lazy import lazy_module
from lifecycle.runner import InvokeRunner

# Loaded on first use: a task imports only what it runs (`invoke build` none of these).
adopting = lazy_module("lifecycle.adopt")
deps = lazy_module("lifecycle.deps")
offline = lazy_module("lifecycle.offline")
wheel = lazy_module("lifecycle.wheel")


@task(
    help={
        "path": "The folder of the Django project to adopt (its git checkout).",
        "force": "Adopt even when PATH has uncommitted changes. Default: off (refused).",
        "python": "A Python with the project's dependencies, to import-check its settings. Default: PATH/.venv's.",
    }
)
@user_errors
def adopt(c, path, force=False, python=None):
    """Detect a Django project at PATH; write the suite's files, its wheel and [tool.lifecycle]; again: upgrade."""
    lines = adopting.adopt(Path(path), InvokeRunner(c), force=force, python=python, dry=c.config.run.dry)
    print("\n".join(lines))


@task(name="wheel")
@user_errors
def wheel_build(c):
    """Build the lifecycle library as a wheel into dist/ (reproducible) and print its name and sha256."""
    ctx = context(c)
    built = wheel.build(ctx.settings.root, ctx.run, dry=ctx.dry)
    if built:
        print(built.line())


@task
def docs(c):
    """Write the generated reference pages, docs/settings.md and docs/tasks.md, from the settings table and the help."""
    try:
        import docgen  # the suite's checkout only: an adopted project's pages are its own
    except ModuleNotFoundError:
        raise Exit(
            "invoke docs writes the suite's own reference pages; run it in the suite's checkout", code=1
        ) from None
    from lifecycle.cli.tasks import ns  # the whole namespace, which imports this module

    changed = docgen.write(ns)
    print("\n".join(f"wrote {page}" for page in changed) or "docs/settings.md and docs/tasks.md are up to date")


@task(name="offline", help={"force": "Rebuild the images even when they exist. Default: off."})
@user_errors
def images_offline(c, force=False):
    """Build the offline images (Python, MariaDB, registry, HAProxy) from Debian packages and switch to them."""
    s = local(c)
    made = offline.ensure_offline_images(s.settings, s.run, force=force)
    if s.dry:
        print(f"dry run: would build {', '.join(made) if made else 'nothing'} and switch the stack to them")
        return
    offline.write_switch(s.settings)
    print(f"offline images: {', '.join(made) if made else 'all present, nothing rebuilt'}")


@task(name="lock")
@user_errors
def deps_lock(c):
    """Regenerate every requirements/*.txt from its .in with hashes (uv; deterministic: pins move only on upgrade)."""
    s = local(c, engine=False)
    deps.lock_all(s.run, s.settings.root, dry=s.dry)


@task(name="upgrade", help={"package": "Upgrade only this package (e.g. django). Default: every package."})
@user_errors
def deps_upgrade(c, package=None):
    """Upgrade one package or all of them in every lock, and print each version change."""
    s = local(c, engine=False)
    deps.lock_all(s.run, s.settings.root, upgrade_all=package is None, upgrade_package=package, dry=s.dry)


images_tasks = Collection("images", images_offline)
deps_tasks = Collection("deps", deps_lock, deps_upgrade)
