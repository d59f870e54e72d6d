"""Fixtures for the Django site tests; they run in the test-qa image against a real MySQL server."""

import os
import subprocess
import sys
from pathlib import Path

import django
import pytest
from django.test import Client

# The test-qa image sets this; the default lets `pytest tests/site` also work from a bare checkout. pytest-django
# sets Django up before conftests load only when the variable was already set, so finish that here (idempotent).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
django.setup()

REPO_ROOT = Path(__file__).resolve().parents[2]


def is_site_variable(name):
    """True for the variables the settings read; subprocess tests start from an environment without them."""
    return name.startswith(("DJANGO_", "DB_")) or name in ("APP_STAGE", "TZ")


@pytest.fixture(autouse=True)
def uncollected_static_files(settings, tmp_path):
    """Serve static files without collectstatic having run: no manifest, empty root; collectstatic has its own test."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def run_site_python():
    """Run Python in a fresh interpreter at the repository root with only the given site variables set."""

    def run(args, **site_environment):
        environment = {name: value for name, value in os.environ.items() if not is_site_variable(name)}
        environment["DJANGO_SETTINGS_MODULE"] = "django_site.settings"
        environment.update(site_environment)
        return subprocess.run(
            [sys.executable, *args],
            check=False,
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


# What the TLS-ending proxy adds to every request it forwards.
PROXY_HEADERS = {"Host": "testserver", "X-Forwarded-Proto": "https"}


class ProxiedClient(Client):
    """Requests as the app gets them from the TLS proxy: its headers, and HTTPS as the WSGI scheme, which gunicorn
    sets from X-Forwarded-Proto for the proxy's address only (docker/gunicorn.conf.py); Django asks the scheme, so
    the SSL redirect lets these requests in."""

    def _base_environ(self, **request):
        return {**super()._base_environ(**request), "wsgi.url_scheme": "https", "SERVER_PORT": "443"}


@pytest.fixture
def https_client():
    return ProxiedClient(headers=PROXY_HEADERS)


@pytest.fixture
def csrf_checking_https_client():
    """Checks CSRF tokens as a real browser request would be checked (the default test client skips that)."""
    return ProxiedClient(enforce_csrf_checks=True, headers=PROXY_HEADERS)
