"""A project nobody here wrote, built and run by the suite from its [tool.lifecycle] rows, through django_site's path.

`django-admin startproject` + `startapp` made at test time (SQLite hard-coded, a model, its migration, a view and
Django-runner tests), with a plain, unlocked requirements.txt that pulls a C extension (PyYAML's `_yaml`) and no
MySQL driver. It lives in a copy of the checkout (`.lifecycle/it-adopted/NAME`: its lock, zip and reports stay out of
the checkout the other modules build from) and is pointed at with
PROJECT_DIR, CODE, SETTINGS_*, WSGI_APP, REQUIREMENTS(_TEST), TEST_RUNNER, HEALTH_PATH, BUILD_STEPS and
RELEASE_COMMANDS, as its committed table would. Proves: the lock step (compiled, mysqlclient added,
--require-hashes), test-qa running the project's own tests with `manage.py test` under the settings layer against
the real database (coverage over CODE), prod healthy on its own HEALTH_PATH with the release commands run, and the
refusal of a compiled module whose library RUNTIME_PACKAGES lacks (one line, nothing started).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.checkout import IsolatedCheckout, copy_checkout
from tests.helpers.engine import unique_name
from tests.helpers.tools import BUILD_TIMEOUT, describe, last_line

pytestmark = pytest.mark.integration

MODEL = """from django.db import models


class Question(models.Model):
    text = models.CharField(max_length=200)
"""
VIEW = """import yaml
from django.http import JsonResponse

from polls.models import Question


def index(request):
    return JsonResponse({"questions": Question.objects.count(), "yaml": yaml.__with_libyaml__})
"""
# The project's own tests: the Django runner, a real MySQL test database (the layer's), the C extension loaded.
TESTS = """import yaml
from django.db import connection
from django.test import TestCase

from polls.models import Question


class QuestionTests(TestCase):
    def test_rows_live_in_the_stacks_mysql(self):
        Question.objects.create(text="why?")
        self.assertEqual(Question.objects.count(), 1)
        self.assertEqual(connection.vendor, "mysql")

    def test_the_c_extension_is_loaded(self):
        self.assertTrue(yaml.__with_libyaml__)

    def test_the_view_counts(self):
        Question.objects.create(text="how?")
        self.assertEqual(self.client.get("/polls/").json()["questions"], 1)
"""


def make_project(root: Path) -> None:
    root.mkdir(parents=True)
    for argv in (["-m", "django", "startproject", "mysite", "."], ["manage.py", "startapp", "polls"]):
        subprocess.run([sys.executable, *argv], cwd=root, check=True, capture_output=True)
    settings = root / "mysite" / "settings.py"
    text = settings.read_text()
    for quote in "'\"":  # Django's template quotes with ' (5.2) or " (later)
        staticfiles = f"{quote}django.contrib.staticfiles{quote},"
        text = text.replace(staticfiles, f"{staticfiles}\n    {quote}polls{quote},")
    settings.write_text(text)
    (root / "polls" / "models.py").write_text(MODEL)
    subprocess.run([sys.executable, "manage.py", "makemigrations", "polls"], cwd=root, check=True, capture_output=True)
    (root / "polls" / "views.py").write_text(VIEW)
    (root / "polls" / "tests.py").write_text(TESTS)
    urls = root / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        .replace("from django.urls import path", "from django.urls import path\n\nfrom polls.views import index")
        .replace("path('admin/', admin.site.urls),", "path('admin/', admin.site.urls),\n    path('polls/', index),")
        .replace('path("admin/", admin.site.urls),', 'path("admin/", admin.site.urls),\n    path("polls/", index),')
    )
    (root / "requirements.txt").write_text("Django>=5.2,<5.3\nPyYAML>=6\n")  # unlocked; no MySQL driver
    (root / "requirements-dev.txt").write_text("-r requirements.txt\ncoverage\n")


@pytest.fixture(scope="module")
def adopted(tmp_path_factory) -> Iterator[tuple[IsolatedCheckout, dict[str, str]]]:
    """The project, its checkout settings (own compose project, images, ports) and its [tool.lifecycle] rows."""
    name = unique_name("it-adopted")
    folder = Path(".lifecycle") / "it-adopted" / name
    rows = {
        "PROJECT_DIR": str(folder),
        "CODE": "manage.py mysite polls",
        "SETTINGS_DEV": "mysite.settings",
        "SETTINGS_PROD": "mysite.settings",
        "WSGI_APP": "mysite.wsgi:application",
        "REQUIREMENTS": f"{folder}/requirements.txt",
        "REQUIREMENTS_TEST": f"{folder}/requirements-dev.txt",
        "TESTS": "",  # its tests are in its app (polls/tests.py), inside CODE
        "TEST_RUNNER": "django",
        "HEALTH_PATH": "/healthz",
        "BUILD_STEPS": "findstatic admin/css/base.css",
        "RELEASE_COMMANDS": "createcachetable",
        "ZIP_NAME": f"{name}.zip",  # the checkout's own zip stays django_site's
    }
    root = copy_checkout(tmp_path_factory.mktemp("adopted") / "checkout")
    checkout = IsolatedCheckout.new(root=root)
    try:
        make_project(root / folder)
        yield checkout, rows
    finally:
        checkout.remove()
        shutil.rmtree(root, ignore_errors=True)


def run(adopted: tuple[IsolatedCheckout, dict[str, str]], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    checkout, rows = adopted
    return checkout.invoke(*args, env={**rows, **env}, timeout=BUILD_TIMEOUT)


def test_qa_runs_the_projects_own_django_tests_under_the_layer_against_mysql(adopted):
    done = run(adopted, "qa")
    output = done.stdout + done.stderr
    assert done.returncode == 0, describe(done)
    assert "lock: compiling .lifecycle/build/locks/runtime.txt from" in output  # not locked: compiled
    assert "(+ mysqlclient, gunicorn, whitenoise, django-prometheus)" in output  # none listed: added
    assert "Ran 3 tests" in output
    coverage = (adopted[0].root / "reports" / "coverage.xml").read_text()
    assert 'filename="polls/models.py"' in coverage or "polls" in coverage


def test_prod_answers_on_its_health_path_after_its_release_commands(adopted):
    checkout, _ = adopted
    done = run(adopted, "up", "--stage", "prod")
    assert done.returncode == 0, describe(done)
    assert "build step: manage.py findstatic admin/css/base.css" in done.stdout + done.stderr
    assert checkout.health("prod") == "healthy"  # docker/healthcheck.py asked /healthz, the wrapper answered
    with urllib.request.urlopen(f"http://127.0.0.1:{checkout.port}/healthz", timeout=10) as response:
        assert json.loads(response.read())["database"] == "reachable"
    logs = subprocess.run(["docker", "logs", checkout.container("prod")], capture_output=True, text=True).stderr
    assert "release command: manage.py createcachetable" in logs
    # The settings layer's /metrics, on loopback, with no edit of the project: its own pages and queries counted.
    with urllib.request.urlopen(f"http://127.0.0.1:{checkout.port}/polls/", timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{checkout.port}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    polls_gets = 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="polls.views.index"}'
    assert polls_gets in exposition
    assert 'django_db_execute_total{alias="default",vendor="mysql"}' in exposition


def test_a_compiled_module_without_its_library_is_refused_in_one_line(adopted):
    done = run(adopted, "build", "--stage", "prod", RUNTIME_PACKAGES="tzdata")
    assert done.returncode == 1, describe(done)
    assert last_line(done.stderr).startswith("error: libmariadb.so.3 (needed by lib/python3.")
    assert "from mysqlclient) is not in the image; add libmariadb3 to runtime-packages in [tool.lifecycle]" in (
        last_line(done.stderr)
    )
    assert last_line(done.stderr).endswith("nothing was started")
