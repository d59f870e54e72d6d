"""lifecycle_site/metrics.py: the settings layer's METRICS part, the /metrics endpoint (who it answers), and
prometheus_client's multiprocess mode as gunicorn runs it (real processes writing, one scrape summing them)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lifecycle_site import metrics
from lifecycle_site.layer import apply
from tests.helpers import CHECKOUT
from tests.unit.test_gunicorn_conf import load_conf

PROD = {"APP_STAGE": "prod", "DJANGO_SECRET_KEY": "suite-key", "DB_PASSWORD": "pw"}
PROJECT = {
    "INSTALLED_APPS": ["django.contrib.admin", "shop"],
    "MIDDLEWARE": ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"],
    "DATABASES": {"reports": {"ENGINE": "django.db.backends.postgresql"}, "legacy": {"ENGINE": "custom.backend"}},
}


# --------------------------------------------------------------------------------------------- the settings


def test_the_layer_adds_its_middleware_first_and_django_prometheus_databases():
    done = apply(PROJECT, PROD)
    assert "METRICS" in done["LIFECYCLE_APPLIED"]
    assert done["INSTALLED_APPS"] == ["django.contrib.admin", "shop", "django_prometheus"]
    assert done["MIDDLEWARE"] == [
        metrics.MIDDLEWARE,
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.middleware.common.CommonMiddleware",
    ]
    engines = {alias: config["ENGINE"] for alias, config in done["DATABASES"].items()}
    assert engines == {
        "default": "django_prometheus.db.backends.mysql",  # the stack's MySQL (the DATABASE part), instrumented
        "reports": "django_prometheus.db.backends.postgresql",
        "legacy": "custom.backend",  # no instrumented twin: kept as it is
    }
    assert PROJECT["DATABASES"]["reports"]["ENGINE"] == "django.db.backends.postgresql"  # the project's not changed


def test_a_project_that_set_up_django_prometheus_itself_gets_nothing_twice():
    own = {
        "INSTALLED_APPS": ["django_prometheus", "shop"],
        "MIDDLEWARE": [*metrics.THEIRS[:1], "x.Middleware", *metrics.THEIRS[1:]],
        "DATABASES": {"default": {"ENGINE": "django_prometheus.db.backends.sqlite3"}},
    }
    assert metrics.instrumented(own) == own


@pytest.mark.parametrize(
    ("environ", "installed"),
    [
        pytest.param({"LAYER_METRICS": "false"}, True, id="switched off"),
        pytest.param({}, False, id="django-prometheus not installed (its lock left it out)"),
    ],
)
def test_without_the_switch_or_the_library_nothing_is_added(environ, installed):
    done = apply(PROJECT, {**PROD, **environ}, lambda module: installed or module != metrics.APP)
    assert "METRICS" not in done["LIFECYCLE_APPLIED"]
    assert done["INSTALLED_APPS"] == PROJECT["INSTALLED_APPS"]
    assert metrics.MIDDLEWARE not in done["MIDDLEWARE"]
    assert done["DATABASES"]["default"]["ENGINE"].startswith("django.db")


# --------------------------------------------------------------------------------------------- the endpoint


def call(app, path: str, method: str = "GET", **headers: str) -> tuple[str, dict, bytes]:
    seen: dict = {}
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, **headers}
    body = b"".join(app(environ, lambda status, head: seen.update(status=status, headers=dict(head))))
    return seen["status"], seen["headers"], body


def project_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the project"]


ENDPOINT = metrics.MetricsEndpoint(project_app, render=lambda accept: (b"m 1\n", f"exposition for {accept or '-'}"))


@pytest.mark.parametrize(
    ("path", "method", "headers", "status", "body"),
    [
        pytest.param("/metrics", "GET", {}, "200 OK", b"m 1\n", id="a scraper on the app's port"),
        pytest.param("/metrics/", "GET", {}, "200 OK", b"m 1\n", id="with its slash"),
        pytest.param("/metrics", "HEAD", {}, "200 OK", b"", id="HEAD"),
        pytest.param("/metrics", "POST", {}, "405 Method Not Allowed", b"GET only\n", id="POST"),
        pytest.param(
            "/metrics",
            "GET",
            {"HTTP_X_FORWARDED_FOR": "203.0.113.7"},
            "404 Not Found",
            b"Not Found\n",
            id="relayed by the HTTPS proxy",
        ),
        pytest.param(
            "/metrics",
            "GET",
            {"HTTP_FORWARDED": "for=203.0.113.7"},
            "404 Not Found",
            b"Not Found\n",
            id="relayed by another proxy",
        ),
        pytest.param("/metricsx", "GET", {}, "200 OK", b"the project", id="another path: the project's"),
        pytest.param("/", "GET", {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}, "200 OK", b"the project", id="the site"),
    ],
)
def test_the_endpoint_answers_scrapers_and_refuses_relayed_requests(path, method, headers, status, body):
    got_status, got_headers, got_body = call(ENDPOINT, path, method, **headers)
    assert (got_status, got_body) == (status, body)
    if path.startswith("/metrics/") or path == "/metrics":
        assert got_headers["Cache-Control"] == "no-store"


def test_the_scrapers_accept_header_chooses_the_format():
    _, headers, _ = call(ENDPOINT, "/metrics", HTTP_ACCEPT="application/openmetrics-text")
    assert headers["Content-Type"] == "exposition for application/openmetrics-text"


# --------------------------------------------------------------------------------------------- multiprocess mode

WORKER = textwrap.dedent("""
    import sys
    from django_prometheus.db.metrics import execute_total
    for _ in range(int(sys.argv[1])):
        execute_total.labels("default", "mysql").inc()
""")
SCRAPE = "from lifecycle_site.metrics import exposition; print(exposition('')[0].decode())"


def python(code: str, *args: str, directory: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT), "PROMETHEUS_MULTIPROC_DIR": directory}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def test_workers_counts_are_summed_by_one_scrape_and_gunicorns_start_empties_the_folder(tmp_path):
    conf = load_conf()
    folder = str(tmp_path / "prometheus")
    conf.fresh_directory(folder)
    for count in ("3", "4"):  # two worker processes, one after the other (the first one's files stay: counters)
        python(WORKER, count, directory=folder)
    line = 'django_db_execute_total{alias="default",vendor="mysql"} 7.0'
    assert line in python(SCRAPE, directory=folder)
    conf.fresh_directory(folder)  # gunicorn starts again (a restarted container): nothing of the last run counts
    assert os.listdir(folder) == []
    assert "django_db_execute_total{" not in python(SCRAPE, directory=folder)


def test_gunicorn_sets_the_folder_for_its_workers_only_when_metrics_are_on(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("LAYER_METRICS", raising=False)
    assert load_conf().raw_env == ["PROMETHEUS_MULTIPROC_DIR=/dev/shm/prometheus-metrics"]  # memory, in any container
    monkeypatch.setenv("LAYER_METRICS", "false")
    assert load_conf().raw_env == []


def test_a_folder_that_cannot_be_made_warns_and_the_site_still_starts(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "a-file" / "metrics"))
    monkeypatch.delenv("LAYER_METRICS", raising=False)
    conf, warnings = load_conf(), []
    server = type("Server", (), {"log": type("Log", (), {"warning": lambda self, *args: warnings.append(args)})()})()
    conf.on_starting(server)  # gunicorn applied raw_env already: the variable is set
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # the workers count in their own process
    assert warnings and "cannot be made" in warnings[0][0]
