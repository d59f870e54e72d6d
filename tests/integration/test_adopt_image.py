"""A project nobody here wrote, run by the suite's prod image under the settings layer, against a real database.

`django-admin startproject` + `startapp` (SQLite hard-coded, DEBUG = True, no static serving, no /health) is
mounted read-only over /app of the prod image that `invoke build` made; nothing of it is edited. It must end on
the stack's MySQL, answer the suite's /health from the database, serve its admin with CSS through WhiteNoise,
and say 503 once the database is gone.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.checkout import PROD_RUN_OPTIONS
from tests.helpers.tools import HEALTH_TIMEOUT

pytestmark = pytest.mark.integration

# Fetches a path from the app inside its container (no published port): status line, then the body's start.
FETCH = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n"
    "    r = urllib.request.urlopen('http://127.0.0.1:8000' + sys.argv[1], timeout=5)\n"
    "    print(r.status); print(r.read(300).decode(errors='replace'))\n"
    "except urllib.error.HTTPError as e:\n"
    "    print(e.code); print(e.read(300).decode(errors='replace'))\n"
)
# The image's own entrypoint and server (wait for the database, migrate, the release commands, gunicorn on the
# layer's WSGI app), after a collectstatic into memory: the project is mounted read-only and ships no collected files.
SERVE = (
    "python manage.py collectstatic --noinput --verbosity 0 && "
    "exec /usr/local/bin/entrypoint.sh gunicorn --config /etc/gunicorn.conf.py lifecycle_site.wsgi:application"
)


@pytest.fixture(scope="module")
def startproject(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("adopted") / "myproject"
    root.mkdir()
    for argv in (["-m", "django", "startproject", "mysite", "."], ["manage.py", "startapp", "shop"]):
        subprocess.run([sys.executable, *argv], cwd=root, check=True, capture_output=True)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user 10001 reads it through the mount
    return root


@contextmanager
def adopted_site(engine, settings, image: str, project: Path) -> Iterator[tuple[str, str]]:
    network = engine.unique_name("it-adopt")
    password = secrets.token_hex(12)
    engine.docker("network", "create", network)
    try:
        env = {**os.environ, "MYSQL_PASSWORD": password, "MYSQL_ROOT_PASSWORD": secrets.token_hex(12),
               "DB_PASSWORD": password, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}  # fmt: skip
        with (
            engine.docker_container(
                settings["DB_IMAGE"], "--network", network, "--network-alias", "db", "--init",
                "-e", "MYSQL_DATABASE=app", "-e", "MYSQL_USER=app", "-e", "MYSQL_PASSWORD", "-e", "MYSQL_ROOT_PASSWORD",
                prefix="it-adopt-db", env=env,
            ) as db,
            engine.docker_container(
                image, *PROD_RUN_OPTIONS, "--network", network,
                "--volume", f"{project}:/app:ro",
                "-e", "LIFECYCLE_PROJECT_SETTINGS=mysite.settings",
                "-e", "LIFECYCLE_PROJECT_WSGI=mysite.wsgi:application",
                "-e", "DJANGO_STATIC_ROOT=/tmp/static", "-e", "DB_HOST=db",
                "-e", "DB_PASSWORD", "-e", "DJANGO_SECRET_KEY", "-e", "RELEASE_COMMANDS=createcachetable;check",
                "--entrypoint", "bash", command=["-c", SERVE], prefix="it-adopt-app", env=env,
            ) as app,
        ):  # fmt: skip
            yield db, app
    finally:
        engine.docker("network", "rm", network, check=False)


def fetch(engine, app: str, path: str) -> tuple[int, str]:
    done = engine.docker("exec", app, "python3", "-c", FETCH, path, check=False)
    if done.returncode:
        return 0, done.stderr
    status, _, body = done.stdout.partition("\n")
    return int(status), body


def test_a_startproject_site_runs_unedited_under_the_layer(engine, settings, built_images, startproject):
    with adopted_site(engine, settings, built_images["prod"], startproject) as (db, app):
        status, body = engine.wait_for(
            lambda: (got := fetch(engine, app, "/health"))[0] == 200 and got, HEALTH_TIMEOUT, "/health to say 200"
        )
        assert '"database": "reachable"' in body
        logs = engine.docker("logs", app).stderr
        assert "release command: manage.py createcachetable" in logs  # after migrate, by the entrypoint
        assert "release command: manage.py check" in logs
        vendor = engine.docker(
            "exec", app, "python", "manage.py", "shell", "-c",
            "from django.db import connection; from django.conf import settings; "
            "print(connection.vendor, settings.DEBUG, settings.LIFECYCLE_APPLIED)",
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        # startproject hard-codes SQLite and DEBUG = True: the stack's MySQL and no debug pages instead.
        assert vendor.startswith("mysql False ['DATABASE', 'SECRET_KEY', 'DEBUG', 'HOSTS', 'PROXY', 'STATIC'")
        status, body = fetch(engine, app, "/admin/login/")
        assert (status, "Log in" in body) == (200, True)
        assert fetch(engine, app, "/static/admin/css/base.css")[0] == 200  # WhiteNoise, added by the layer
        assert fetch(engine, app, "/no-such-page/")[0] == 404  # the project's own URLs, DEBUG off: no debug page
        engine.docker("stop", db)
        assert engine.wait_for(lambda: fetch(engine, app, "/health")[0] == 503, 30, "/health to say 503")
