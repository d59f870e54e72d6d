"""Real Django, no Docker: `django-admin startproject` + `startapp` trees adopted, run under the suite's settings
layer and health wrapper (each in a process of its own: Django configures its settings once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from lifecycle import adopt, detect
from lifecycle.errors import UserError
from lifecycle.runner import SubprocessRunner

CHECKOUT = Path(__file__).resolve().parents[2]
# Calls the layer's WSGI application in-process and prints what each path answered, and the settings it ran with.
PROBE = textwrap.dedent("""
    import io, json, sys
    from lifecycle_site.wsgi import application
    from django.conf import settings

    def call(path):
        seen = {}
        environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
                   "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO()}
        body = b"".join(application(environ, lambda status, headers: seen.update(status=status)))
        return seen["status"], body.decode()[: None if path.startswith("/metrics") else 200]

    print(json.dumps({
        "paths": {path: call(path) for path in sys.argv[1:]},
        "DEBUG": settings.DEBUG, "ENGINE": settings.DATABASES["default"]["ENGINE"],
        "MIDDLEWARE": settings.MIDDLEWARE, "SECRET_KEY": settings.SECRET_KEY, "APPLIED": settings.LIFECYCLE_APPLIED,
        "WRAPPED": type(application).__name__ == "HealthCheck",
    }))
""")


def django_admin(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "django", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def startproject(tmp_path_factory) -> Path:
    """`django-admin startproject mysite .` and `manage.py startapp shop`, committed: what a new team starts from."""
    root = tmp_path_factory.mktemp("real") / "myproject"
    root.mkdir()
    django_admin("startproject", "mysite", ".", cwd=root)
    subprocess.run([sys.executable, "manage.py", "startapp", "shop"], cwd=root, check=True, capture_output=True)
    (root / "requirements.txt").write_text("Django>=5.2,<6\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "startproject"]):
        subprocess.run(["git", "-C", str(root), *argv], check=True, env=env, capture_output=True)
    return root


def probe(project: Path, *paths: str, **environ: str) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{CHECKOUT}{os.pathsep}{project}",
        "LIFECYCLE_PROJECT_SETTINGS": "mysite.settings",
        "APP_STAGE": "prod",
        "DJANGO_SECRET_KEY": "suite-key",
        "DB_ENGINE": "django.db.backends.sqlite3",
        "DB_NAME": str(project / "db.sqlite3"),
        **environ,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *paths], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_adopt_a_startproject_tree(startproject):
    lines = adopt.adopt(startproject, SubprocessRunner(echo=False), python=sys.executable, files=False)
    found = detect.detect(startproject)
    assert (found.settings_dev, found.settings_prod, found.wsgi_app, found.packages, found.test_runner) == (
        "mysite.settings", "mysite.settings", "mysite.wsgi:application", ("mysite", "shop"), "django",
    )  # fmt: skip
    assert found.static == {"STATIC_URL": "'static/'"}
    assert "requirements:     requirements.txt; tests: (none)" in lines
    assert not any("not import-checked" in line or "not fully checked" in line for line in lines)  # really imported
    table = tomllib.loads((startproject / "pyproject.toml").read_text())["tool"]["lifecycle"]
    assert table["settings"] == {"dev": "mysite.settings", "prod": "mysite.settings"}
    assert table["code"] == ["manage.py", "mysite", "shop"]
    subprocess.run(["git", "-C", str(startproject), "checkout", "-q", "."], check=True)
    (startproject / "pyproject.toml").unlink()


def test_the_layer_runs_a_startproject_site_with_the_suites_health_check(startproject):
    got = probe(startproject, "/health", "/health/", "/admin/login/")
    assert got["WRAPPED"] is True  # startproject routes no /health
    assert got["paths"]["/health"][0] == got["paths"]["/health/"][0] == "200 OK"
    assert json.loads(got["paths"]["/health"][1]) == {"status": "ok", "database": "reachable"}
    assert got["paths"]["/admin/login/"][0] == "200 OK"  # the project's own URLs, through its own WSGI app
    assert "Log in" in got["paths"]["/admin/login/"][1]
    assert (got["DEBUG"], got["SECRET_KEY"]) == (False, "suite-key")  # startproject says DEBUG = True
    assert got["ENGINE"] == "django_prometheus.db.backends.sqlite3"  # DB_ENGINE (MySQL in the images), instrumented
    assert got["MIDDLEWARE"][:3] == ["lifecycle_site.metrics.RequestMetrics",
        "django.middleware.security.SecurityMiddleware", "whitenoise.middleware.WhiteNoiseMiddleware"]  # fmt: skip


def test_the_layer_counts_a_startproject_sites_requests_and_queries_on_its_metrics_endpoint(startproject):
    got = probe(startproject, "/health", "/admin/login/", "/admin/login/", "/no-such-page/", "/metrics")
    status, exposition = got["paths"]["/metrics"]
    assert status == "200 OK"
    lines = set(exposition.splitlines())
    assert 'django_http_responses_total_by_status_total{status="200"} 2.0' in lines  # the project's own pages
    assert 'django_http_responses_total_by_status_total{status="404"} 1.0' in lines
    assert 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="admin:login"} 2.0' in lines
    assert 'django_db_execute_total{alias="default",vendor="sqlite"} 1.0' in lines  # the health check's SELECT 1
    assert any(line.startswith("django_db_query_duration_seconds_count{") for line in lines)


def test_with_the_metrics_switch_off_the_project_answers_metrics_and_its_database_is_as_configured(startproject):
    got = probe(startproject, "/metrics", LAYER_METRICS="false")
    assert got["paths"]["/metrics"][0] == "404 Not Found"
    assert got["ENGINE"] == "django.db.backends.sqlite3" and "METRICS" not in got["APPLIED"]


def test_the_health_check_says_503_when_the_database_does_not_answer(startproject):
    got = probe(startproject, "/health", DB_NAME=str(startproject / "missing" / "db.sqlite3"))
    assert got["paths"]["/health"][0] == "503 Service Unavailable"
    assert json.loads(got["paths"]["/health"][1])["database"] == "unreachable"


def test_with_the_health_switch_off_the_project_answers_the_path(startproject):
    got = probe(startproject, "/health", LAYER_HEALTH="false")
    assert got["paths"]["/health"][0] == "404 Not Found"


def test_uploads_on_the_media_volume_are_served_in_prod_and_the_switch_hands_them_back(startproject, tmp_path):
    (tmp_path / "products").mkdir()
    (tmp_path / "products" / "lamp.txt").write_text("a lamp")
    got = probe(startproject, "/media/products/lamp.txt", "/media/products/", "/media/../db.sqlite3",
                DJANGO_MEDIA_ROOT=str(tmp_path))  # fmt: skip
    assert got["paths"]["/media/products/lamp.txt"] == ["200 OK", "a lamp"]
    assert got["paths"]["/media/products/"][0] == got["paths"]["/media/../db.sqlite3"][0] == "404 Not Found"
    off = probe(startproject, "/media/products/lamp.txt", DJANGO_MEDIA_ROOT=str(tmp_path), LAYER_MEDIA_SERVE="false")
    assert off["paths"]["/media/products/lamp.txt"][0] == "404 Not Found"  # the project's URLs: nothing there
    assert probe(startproject, "/media/products/lamp.txt")["paths"]["/media/products/lamp.txt"][0] == "404 Not Found"


def test_a_wsgi_module_that_forces_its_own_settings_is_refused(startproject, tmp_path):
    wsgi = startproject / "mysite" / "wsgi.py"
    original = wsgi.read_text()
    wsgi.write_text(original.replace("os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')",
                                     "os.environ['DJANGO_SETTINGS_MODULE'] = 'mysite.settings'"))  # fmt: skip
    try:
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{CHECKOUT}{os.pathsep}{startproject}",
               "LIFECYCLE_PROJECT_SETTINGS": "mysite.settings", "LIFECYCLE_PROJECT_WSGI": "mysite.wsgi:application",
               "DJANGO_SECRET_KEY": "k"}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", "import lifecycle_site.wsgi"], env=env, capture_output=True, text=True, check=False
        )
    finally:
        wsgi.write_text(original)
    assert done.returncode != 0
    assert (
        "LayerError: mysite.wsgi:application sets DJANGO_SETTINGS_MODULE=mysite.settings itself, past the "
        "suite's lifecycle_site.settings; use os.environ.setdefault in it"
    ) in done.stderr


def test_django_s_own_error_line_refuses_the_adoption(startproject):
    settings = startproject / "mysite" / "settings.py"
    original = settings.read_text()
    settings.write_text(
        original
        + textwrap.dedent("""
        from django.core.exceptions import ImproperlyConfigured
        raise ImproperlyConfigured("Set the SHOP_DATABASE_URL environment variable")
    """)
    )
    try:
        with pytest.raises(UserError) as raised:
            adopt.adopt(startproject, SubprocessRunner(echo=False), python=sys.executable, force=True, files=False)
    finally:
        settings.write_text(original)
    assert str(raised.value) == (
        "settings module mysite.settings does not import: django.core.exceptions.ImproperlyConfigured: "
        "Set the SHOP_DATABASE_URL environment variable"
    )
    assert not (startproject / "pyproject.toml").exists()


def test_a_project_with_its_own_health_view_keeps_it(startproject):
    urls = startproject / "mysite" / "urls.py"
    original = urls.read_text()
    urls.write_text(
        original
        + textwrap.dedent("""
        from django.http import HttpResponse
        urlpatterns.append(path("health/", lambda request: HttpResponse("the project's own")))
    """)
    )
    try:
        got = probe(startproject, "/health/")
    finally:
        urls.write_text(original)
    assert got["WRAPPED"] is False
    assert got["paths"]["/health/"] == ["200 OK", "the project's own"]


def test_this_repositorys_site_runs_under_the_layer_with_its_own_health_view():
    """django_site is adopted like any project: its settings under the layer, its own /health (no wrapper)."""
    got = probe(
        CHECKOUT, "/health", LIFECYCLE_PROJECT_SETTINGS="django_site.settings", DB_NAME=":memory:",
        DJANGO_SECURE_SSL_REDIRECT="false",
    )  # fmt: skip
    assert got["WRAPPED"] is False
    status, body = got["paths"]["/health"]  # django_site's own view: its readiness answer (an unmigrated database)
    assert (status, "migrations pending" in body) == ("503 Service Unavailable", True)
    assert got["APPLIED"] == ["DATABASE", "SECRET_KEY", "DEBUG", "HOSTS", "PROXY", "STATIC", "LOGGING", "METRICS"]
    assert got["MIDDLEWARE"].count("whitenoise.middleware.WhiteNoiseMiddleware") == 1  # its own, not a second


CATCH_ALL_URLS = """from django.http import HttpResponseNotFound
from django.urls import re_path

def serve(request, path):
    return HttpResponseNotFound("no page")

urlpatterns = [re_path(r"^(?P<path>.*)$", serve)]
"""


def test_a_catch_all_url_pattern_does_not_hide_the_suites_health_check(startproject):
    """Wagtail's page serving resolves every path (and answers 404): the suite still answers /health (nox -s adopt)."""
    (startproject / "mysite" / "urls.py").write_text(CATCH_ALL_URLS)
    got = probe(startproject, "/health/", "/about/")
    assert got["WRAPPED"] is True
    assert got["paths"]["/health/"][0] == "200 OK" and got["paths"]["/about/"][0] == "404 Not Found"
