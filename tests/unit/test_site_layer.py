"""lifecycle_site: the settings layer over a project's own settings, and the health wrapper (no Docker, no Django)."""

from __future__ import annotations

import importlib
import io
import json
import logging as logs
import sys

import pytest

from lifecycle_site import layer
from lifecycle_site.health import HealthCheck
from lifecycle_site.layer import LayerError, apply
from lifecycle_site.requestlog import JsonFormatter, RequestId

SQLITE_PROJECT = {
    "SECRET_KEY": "project-key",
    "DEBUG": True,
    "ALLOWED_HOSTS": ["example.com"],
    "DATABASES": {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"},
        "replica": {"ENGINE": "django.db.backends.sqlite3", "NAME": "replica.sqlite3"},
    },
    "MIDDLEWARE": ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"],
    "STATIC_URL": "static/",
    "INSTALLED_APPS": ["mysite.app"],
}
# The METRICS part changes MIDDLEWARE, DATABASES and INSTALLED_APPS too: off here, tested in test_site_metrics.py.
PROD = {"APP_STAGE": "prod", "DJANGO_SECRET_KEY": "suite-key", "DB_PASSWORD": "pw", "LAYER_METRICS": "false"}


# --------------------------------------------------------------------------------------------- database


@pytest.mark.parametrize(
    "project_databases",
    [
        pytest.param(SQLITE_PROJECT["DATABASES"], id="hard-coded sqlite"),
        pytest.param({"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "from-url"}}, id="a DATABASE_URL"),
        pytest.param({}, id="no DATABASES at all"),
    ],
)
def test_the_default_database_is_the_stacks_mysql_whatever_the_project_had(project_databases):
    done = apply({**SQLITE_PROJECT, "DATABASES": project_databases}, {**PROD, "DB_NAME": "shop", "DB_HOST": "db"})
    default = done["DATABASES"]["default"]
    assert (default["ENGINE"], default["HOST"], default["PORT"], default["NAME"]) == (
        "django.db.backends.mysql", "db", 3306, "shop",
    )  # fmt: skip
    assert (default["USER"], default["PASSWORD"]) == ("app", "pw")
    assert default["OPTIONS"]["charset"] == "utf8mb4"
    assert default["TEST"] == {"NAME": "test_shop", "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}


def test_other_database_aliases_are_kept():
    assert apply(SQLITE_PROJECT, PROD)["DATABASES"]["replica"] == SQLITE_PROJECT["DATABASES"]["replica"]


def test_the_password_comes_from_its_file(tmp_path):
    secret = tmp_path / "db_password"
    secret.write_text("from-file\n")
    environ = {**PROD, "DB_PASSWORD": "", "DB_PASSWORD_FILE": str(secret)}
    assert apply(SQLITE_PROJECT, environ)["DATABASES"]["default"]["PASSWORD"] == "from-file"


def test_an_unreadable_secret_file_is_one_line(tmp_path):
    with pytest.raises(LayerError, match=r"^DB_PASSWORD_FILE=.*missing: cannot read it"):
        apply(SQLITE_PROJECT, {**PROD, "DB_PASSWORD": "", "DB_PASSWORD_FILE": str(tmp_path / "missing")})


def test_a_malformed_port_names_the_variable():
    with pytest.raises(LayerError, match=r"^DB_PORT='abc' is not a whole number"):
        apply(SQLITE_PROJECT, {**PROD, "DB_PORT": "abc"})


# --------------------------------------------------------------------------------------------- secret and debug


@pytest.mark.parametrize(
    ("stage", "environ", "expected"),
    [
        pytest.param("prod", {"DJANGO_SECRET_KEY": "suite-key"}, "suite-key", id="prod: the suite's secret"),
        pytest.param("dev", {"DJANGO_SECRET_KEY": "suite-key"}, "suite-key", id="dev: the suite's secret first"),
        pytest.param("dev", {}, "project-key", id="dev: the project's own key when none is set"),
        pytest.param("test-qa", {}, "project-key", id="test-qa: the project's own key when none is set"),
    ],
)
def test_secret_key(stage, environ, expected):
    assert apply(SQLITE_PROJECT, {"APP_STAGE": stage, **environ})["SECRET_KEY"] == expected


def test_the_secret_key_comes_from_its_file(tmp_path):
    (tmp_path / "key").write_text("filed-key\n")
    environ = {"APP_STAGE": "prod", "DJANGO_SECRET_KEY_FILE": str(tmp_path / "key")}
    assert apply(SQLITE_PROJECT, environ)["SECRET_KEY"] == "filed-key"


@pytest.mark.parametrize("stage", ["stage", "prod"])
def test_stage_and_prod_refuse_to_run_on_the_projects_committed_key(stage):
    with pytest.raises(LayerError, match=rf"^DJANGO_SECRET_KEY is not set in {stage}; set it"):
        apply(SQLITE_PROJECT, {"APP_STAGE": stage})


@pytest.mark.parametrize(
    ("stage", "django_debug", "expected"),
    [
        pytest.param("prod", "", False, id="prod: off though the project says DEBUG = True"),
        pytest.param("stage", "", False, id="stage: off though the project says DEBUG = True"),
        pytest.param("dev", "", True, id="dev: the project's own default"),
        pytest.param("dev", "false", False, id="dev: DJANGO_DEBUG decides"),
        pytest.param("test-qa", "false", False, id="test-qa: DJANGO_DEBUG decides"),
    ],
)
def test_debug(stage, django_debug, expected):
    environ = {"APP_STAGE": stage, "DJANGO_SECRET_KEY": "k", "DJANGO_DEBUG": django_debug}
    assert apply(SQLITE_PROJECT, environ)["DEBUG"] is expected


def test_debug_asked_for_in_prod_is_refused_not_ignored():
    with pytest.raises(LayerError, match=r"^DJANGO_DEBUG is on but APP_STAGE=prod"):
        apply(SQLITE_PROJECT, {**PROD, "DJANGO_DEBUG": "true"})


def test_an_unknown_stage_is_refused():
    with pytest.raises(LayerError, match=r"^APP_STAGE='live' is not a stage"):
        apply(SQLITE_PROJECT, {"APP_STAGE": "live"})


# --------------------------------------------------------------------------------------------- hosts and proxy


def test_hosts_and_origins_are_the_projects_plus_the_containers_plus_loopback():
    environ = {**PROD, "DJANGO_ALLOWED_HOSTS": "prod, example.com", "DJANGO_CSRF_TRUSTED_ORIGINS": "https://x.test"}
    done = apply(SQLITE_PROJECT, environ)
    assert done["ALLOWED_HOSTS"] == ["example.com", "prod", "localhost", "127.0.0.1", "[::1]"]
    assert done["CSRF_TRUSTED_ORIGINS"] == ["https://x.test"]


def test_the_health_path_is_never_redirected_to_https():
    done = apply({**SQLITE_PROJECT, "SECURE_REDIRECT_EXEMPT": [r"^ping$"]}, {**PROD, "HEALTH_PATH": "/healthz/"})
    assert done["SECURE_REDIRECT_EXEMPT"] == [r"^ping$", r"^healthz/?$"]


@pytest.mark.parametrize(
    ("project_header", "trust", "expected"),
    [
        pytest.param(None, "", None, id="not trusted by default: gunicorn reads the proxy's header"),
        pytest.param(("HTTP_X_FORWARDED_PROTO", "https"), "", None, id="the project's own one dropped"),
        pytest.param(None, "true", ("HTTP_X_FORWARDED_PROTO", "https"), id="trusted when asked for"),
    ],
)
def test_the_forwarded_proto_header_is_believed_only_when_asked_for(project_header, trust, expected):
    project = {**SQLITE_PROJECT, "SECURE_PROXY_SSL_HEADER": project_header}
    done = apply(project, {**PROD, "DJANGO_TRUST_X_FORWARDED_PROTO": trust})
    assert done["SECURE_PROXY_SSL_HEADER"] == expected


# --------------------------------------------------------------------------------------------- static, media, logs


def test_static_files_get_a_root_and_whitenoise_after_the_security_middleware():
    done = apply(SQLITE_PROJECT, PROD)
    assert done["STATIC_ROOT"] == "/app/staticfiles"
    assert done["MIDDLEWARE"] == [
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.middleware.common.CommonMiddleware",
    ]
    assert SQLITE_PROJECT["MIDDLEWARE"][1] == "django.middleware.common.CommonMiddleware"  # the input is untouched


@pytest.mark.parametrize(
    "own",
    [
        pytest.param({"MIDDLEWARE": ["whitenoise.middleware.WhiteNoiseMiddleware"]}, id="WhiteNoise already"),
        pytest.param({"STATIC_URL": "https://cdn.example.com/static/"}, id="a CDN"),
        pytest.param({"STORAGES": {"staticfiles": {"BACKEND": "storages.backends.s3.S3Storage"}}}, id="S3 storage"),
        pytest.param({"STATICFILES_STORAGE": "storages.backends.s3boto3.S3Boto3Storage"}, id="old-style S3 storage"),
    ],
)
def test_a_project_that_serves_its_own_static_files_gets_no_whitenoise(own):
    project = {**SQLITE_PROJECT, **own}
    assert apply(project, PROD).get("MIDDLEWARE") == project["MIDDLEWARE"]


def test_no_whitenoise_when_it_is_not_installed():
    assert apply(SQLITE_PROJECT, PROD, installed=lambda module: False)["MIDDLEWARE"] == SQLITE_PROJECT["MIDDLEWARE"]


def test_the_projects_static_root_is_kept_and_the_environment_beats_it():
    project = {**SQLITE_PROJECT, "STATIC_ROOT": "/app/collected"}
    assert apply(project, PROD)["STATIC_ROOT"] == "/app/collected"
    assert apply(project, {**PROD, "DJANGO_STATIC_ROOT": "/srv/static"})["STATIC_ROOT"] == "/srv/static"


def test_media_goes_to_the_media_volume_only_when_one_is_mounted():
    assert "MEDIA_ROOT" not in apply(SQLITE_PROJECT, PROD)
    done = apply(SQLITE_PROJECT, {**PROD, "DJANGO_MEDIA_ROOT": "/app/media"})
    assert (done["MEDIA_ROOT"], done["MEDIA_URL"]) == ("/app/media", "/media/")


def test_logs_go_to_stdout_at_the_asked_level():
    logging = apply({**SQLITE_PROJECT, "LOGGING": {"handlers": {"file": {}}}}, {**PROD, "DJANGO_LOG_LEVEL": "WARNING"})[
        "LOGGING"
    ]
    assert logging["handlers"] == {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    }
    assert logging["formatters"]["json"] == {"()": "lifecycle_site.requestlog.JsonFormatter"}
    assert logging["root"] == {"handlers": ["stdout"], "level": "WARNING"}


@pytest.mark.parametrize(("value", "formatter"), [("", "json"), ("json", "json"), ("TEXT", "text")])
def test_log_format(value, formatter):
    logging = apply(SQLITE_PROJECT, {**PROD, "LOG_FORMAT": value})["LOGGING"]
    assert logging["handlers"]["stdout"]["formatter"] == formatter


def test_a_bad_log_format_is_one_line():
    with pytest.raises(LayerError, match="LOG_FORMAT='xml' is not valid; set it to one of: json, text"):
        apply(SQLITE_PROJECT, {**PROD, "LOG_FORMAT": "xml"})


def test_json_log_lines_carry_the_request_id_of_the_request_being_answered():
    stream = io.StringIO()
    handler = logs.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logs.getLogger("test.requestlog")
    logger.addHandler(handler)
    logger.setLevel(logs.INFO)

    def app(environ, start_response):
        logger.warning('Not Found: /x"y')
        return [b""]

    RequestId(app)({"HTTP_X_REQUEST_ID": "e051b096-78d9-4969-8d74-fabe5d80778b"}, None)
    RequestId(app)({"HTTP_X_REQUEST_ID": 'evil"\nid'}, None)  # never written as it came
    logger.warning("outside a request")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == "e051b096-78d9-4969-8d74-fabe5d80778b" and first["message"] == 'Not Found: /x"y'
    assert (second["request_id"], third["request_id"]) == ("", "")
    assert first["level"] == "WARNING" and first["logger"] == "test.requestlog"


# --------------------------------------------------------------------------------------------- switches


SWITCHED = {
    "DATABASE": "DATABASES",
    "SECRET_KEY": "SECRET_KEY",
    "DEBUG": "DEBUG",
    "HOSTS": "ALLOWED_HOSTS",
    "PROXY": "SECURE_REDIRECT_EXEMPT",
    "STATIC": "MIDDLEWARE",
    "MEDIA": "MEDIA_ROOT",
    "LOGGING": "LOGGING",
    "METRICS": "INSTALLED_APPS",
}


@pytest.mark.parametrize("part", sorted(SWITCHED))
def test_each_part_can_be_switched_off(part):
    environ = {**PROD, "DJANGO_MEDIA_ROOT": "/app/media", f"LAYER_{part}": "false"}
    project = {**SQLITE_PROJECT, "SECRET_KEY": "project-key"}
    done = apply(project, environ)
    assert done.get(SWITCHED[part]) == project.get(SWITCHED[part])
    assert part not in done["LIFECYCLE_APPLIED"]
    assert apply(project, {**environ, f"LAYER_{part}": "true"}).get(SWITCHED[part]) != project.get(SWITCHED[part])


def test_every_part_has_a_test_of_its_switch():
    assert set(SWITCHED) | {"HEALTH", "MEDIA_SERVE"} == set(layer.PARTS)  # wsgi parts: tests/unit/test_adopt_django.py


def test_a_malformed_switch_names_it():
    with pytest.raises(LayerError, match=r"^LAYER_STATIC='nope' is not a boolean"):
        apply(SQLITE_PROJECT, {**PROD, "LAYER_STATIC": "nope"})


# --------------------------------------------------------------------------------------------- the settings module


@pytest.fixture
def import_layer_settings(tmp_path, monkeypatch):
    """Import lifecycle_site.settings afresh over a plain settings module written to tmp_path."""

    def run(source: str, **environ: str):
        package = tmp_path / "plainsite"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "settings.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        for name in ("lifecycle_site.settings", "plainsite", "plainsite.settings"):
            monkeypatch.delitem(sys.modules, name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        return importlib.import_module("lifecycle_site.settings")

    return run


def test_the_settings_module_wraps_the_project_module_it_is_pointed_at(import_layer_settings):
    settings = import_layer_settings(
        "SECRET_KEY = 'committed'\nDEBUG = True\nDATABASES = {'default': {'ENGINE': 'x.sqlite3'}}\nlowercase = 1\n",
        LIFECYCLE_PROJECT_SETTINGS="plainsite.settings",
        APP_STAGE="prod",
        DJANGO_SECRET_KEY="suite-key",
    )
    assert (settings.SECRET_KEY, settings.DEBUG) == ("suite-key", False)
    # The stack's MySQL, through django-prometheus's backend (installed here, so the METRICS part applies).
    assert settings.DATABASES["default"]["ENGINE"] == "django_prometheus.db.backends.mysql"
    assert settings.LIFECYCLE_APPLIED[-1] == "METRICS"
    assert not hasattr(settings, "lowercase")


def test_the_settings_module_without_a_project_is_one_line(import_layer_settings, monkeypatch):
    monkeypatch.delenv("LIFECYCLE_PROJECT_SETTINGS", raising=False)
    with pytest.raises(LayerError, match=r"^LIFECYCLE_PROJECT_SETTINGS is not set"):
        import_layer_settings("X = 1\n")


@pytest.mark.parametrize(("stage", "look_every_s"), [("dev", 0.25), ("prod", 1), ("stage", 1)])
def test_only_devs_runserver_looks_for_saved_files_four_times_a_second(import_layer_settings, monkeypatch, stage,
                                                                       look_every_s):  # fmt: skip
    from django.utils import autoreload

    monkeypatch.setattr(autoreload.StatReloader, "SLEEP_TIME", 1)  # Django's own
    import_layer_settings("DEBUG = True\n", LIFECYCLE_PROJECT_SETTINGS="plainsite.settings", APP_STAGE=stage,
                          DJANGO_SECRET_KEY="suite-key")  # fmt: skip
    looks_every = autoreload.StatReloader.SLEEP_TIME
    assert looks_every == look_every_s


# --------------------------------------------------------------------------------------------- health


def fake_app(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"project"]


def call(app, path, method="GET"):
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": method}, start_response))
    return seen["status"], body


@pytest.mark.parametrize("path", ["/health", "/health/"])
@pytest.mark.parametrize(("answers", "status"), [(True, "200 OK"), (False, "503 Service Unavailable")])
def test_the_health_path_is_answered_from_the_database_check(path, answers, status):
    got, body = call(HealthCheck(fake_app, "/health", check=lambda: answers), path)
    assert got == status
    assert json.loads(body)["database"] == ("reachable" if answers else "unreachable")


@pytest.mark.parametrize(
    ("path", "method"),
    [("/", "GET"), ("/healthy", "GET"), ("/health", "POST"), ("/admin/health", "GET")],
)
def test_everything_else_goes_to_the_project(path, method):
    assert call(HealthCheck(fake_app, "/health", check=lambda: True), path, method) == ("404 Not Found", b"project")


def test_a_head_request_has_no_body():
    assert call(HealthCheck(fake_app, "/health", check=lambda: True), "/health", "HEAD") == ("200 OK", b"")


@pytest.mark.parametrize(("value", "expected"), [("", "/health"), ("/healthz/", "/healthz"), ("/-/ready", "/-/ready")])
def test_health_path(value, expected):
    assert layer.health_path({"HEALTH_PATH": value}) == expected


@pytest.mark.parametrize("value", ["health", "/"])
def test_a_health_path_that_is_not_a_path_is_refused(value):
    with pytest.raises(LayerError, match=r"^HEALTH_PATH="):
        layer.health_path({"HEALTH_PATH": value})
