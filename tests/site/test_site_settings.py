"""Settings read from the environment, each case in a fresh interpreter with a crafted environment."""

import json
import secrets

import pytest

IMPORT_SETTINGS = ["-c", "import django_site.settings"]
STRONG_KEY = secrets.token_urlsafe(50)


def print_settings(*names):
    """Arguments for a Python process that prints the named settings as JSON."""
    values = ", ".join(f"{name!r}: settings.{name}" for name in names)
    return ["-c", f"import json; from django_site import settings; print(json.dumps({{{values}}}, default=str))"]


def last_line(text):
    return text.strip().splitlines()[-1]


def test_missing_secret_key_outside_debug_is_refused_with_one_clear_line(run_site_python):
    result = run_site_python(IMPORT_SETTINGS)
    assert result.returncode != 0
    assert last_line(result.stderr) == (
        "django.core.exceptions.ImproperlyConfigured: DJANGO_SECRET_KEY is not set; set it in .env or the environment "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    )


def test_debug_runs_without_secret_key_using_insecure_dev_key(run_site_python):
    result = run_site_python(
        print_settings("SECRET_KEY", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE"), DJANGO_DEBUG="true"
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert "insecure" in values["SECRET_KEY"]
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("stage", ["stage", "prod"])
def test_debug_is_refused_in(run_site_python, stage):
    result = run_site_python(IMPORT_SETTINGS, APP_STAGE=stage, DJANGO_DEBUG="true", DJANGO_SECRET_KEY=STRONG_KEY)
    assert result.returncode != 0
    assert f"DJANGO_DEBUG is on but APP_STAGE={stage}" in last_line(result.stderr)


@pytest.mark.parametrize("stage", ["dev", "test-qa"])
def test_debug_is_allowed_in(run_site_python, stage):
    result = run_site_python(IMPORT_SETTINGS, APP_STAGE=stage, DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected_message"),
    [
        pytest.param(
            "DB_PORT", "abc", "DB_PORT='abc' is not an integer; set it to a whole number", id="db-port-not-int"
        ),
        pytest.param("DB_CONNECT_TIMEOUT", "3s", "DB_CONNECT_TIMEOUT='3s' is not an integer", id="timeout-not-int"),
        pytest.param(
            "DJANGO_DEBUG",
            "maybe",
            "DJANGO_DEBUG='maybe' is not a boolean; set it to true or false",
            id="debug-not-bool",
        ),
        pytest.param(
            "APP_STAGE",
            "production",
            "APP_STAGE='production' is not valid; set it to one of: dev, test-qa",
            id="unknown-stage",
        ),
        pytest.param("DJANGO_LOG_LEVEL", "LOUD", "DJANGO_LOG_LEVEL='LOUD' is not valid", id="unknown-log-level"),
    ],
)
def test_malformed_variable_is_refused_naming_it(run_site_python, variable, value, expected_message):
    result = run_site_python(IMPORT_SETTINGS, DJANGO_SECRET_KEY=STRONG_KEY, **{variable: value})
    assert result.returncode != 0
    assert expected_message in last_line(result.stderr)


def test_defaults_without_any_variables_but_the_key(run_site_python):
    names = ("DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASES", "TIME_ZONE", "SECURE_HSTS_SECONDS")
    result = run_site_python(print_settings(*names), DJANGO_SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    database = values["DATABASES"]["default"]
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert values["CSRF_TRUSTED_ORIGINS"] == []
    assert (database["HOST"], database["PORT"], database["NAME"], database["USER"]) == ("db", 3306, "app", "app")
    assert database["OPTIONS"]["connect_timeout"] == 3
    assert database["OPTIONS"]["charset"] == "utf8mb4"
    assert database["TEST"]["NAME"] == "test_app"
    assert values["TIME_ZONE"] == "UTC"
    assert values["SECURE_HSTS_SECONDS"] == 31536000


def test_lists_and_database_come_from_the_environment(run_site_python):
    result = run_site_python(
        print_settings("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASES", "TIME_ZONE"),
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_ALLOWED_HOSTS="web, localhost,,",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://example.test",
        DB_HOST="mysql.internal",
        DB_PORT="3307",
        DB_NAME="shop",
        DB_CONN_MAX_AGE="0",
        TZ="Europe/Paris",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    database = values["DATABASES"]["default"]
    assert values["ALLOWED_HOSTS"] == ["web", "localhost"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://example.test"]
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("mysql.internal", 3307, "shop")
    assert database["CONN_MAX_AGE"] == 0
    assert database["TEST"]["NAME"] == "test_shop"
    assert values["TIME_ZONE"] == "Europe/Paris"


def test_deploy_check_passes_with_debug_off_and_a_strong_key(run_site_python):
    result = run_site_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], DJANGO_SECRET_KEY=STRONG_KEY
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_flags_the_insecure_dev_key(run_site_python):
    result = run_site_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SECRET_KEY="django-insecure-dev-only-key-never-use-outside-debug",
    )
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_collectstatic_needs_no_database_and_whitenoise_serves_admin_css(run_site_python, tmp_path):
    # As at image build time: a throwaway key and no reachable database.
    build_environment = {
        "DJANGO_SECRET_KEY": "collectstatic-only",
        "DJANGO_STATIC_ROOT": str(tmp_path),
        "DB_HOST": "no-database.invalid",
    }
    collected = run_site_python(["manage.py", "collectstatic", "--noinput"], **build_environment)
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "staticfiles.json").is_file()

    fetch_admin_css = (
        "import django; django.setup()\n"
        "from django.templatetags.static import static; from django.test import Client\n"
        "url = static('admin/css/base.css')\n"
        "response = Client().get(url, secure=True)\n"
        "print(url, response.status_code, response['Content-Type'])\n"
    )
    served = run_site_python(["-c", fetch_admin_css], DJANGO_ALLOWED_HOSTS="testserver", **build_environment)
    assert served.returncode == 0, served.stderr
    url, status, content_type = served.stdout.split()[:3]
    assert url.startswith("/static/admin/css/base.")
    assert url != "/static/admin/css/base.css", "the URL should carry the content hash"
    assert (status, content_type) == ("200", "text/css;")


def test_secrets_come_from_their_files_when_only_the_file_is_named(run_site_python, tmp_path):
    """`docker exec` never passes the entrypoint: the settings read DJANGO_SECRET_KEY_FILE and DB_PASSWORD_FILE."""
    key, password = tmp_path / "django_secret_key", tmp_path / "db_password"
    key.write_text(STRONG_KEY + "\n")
    password.write_text("pw with ' and \" and $x")
    result = run_site_python(
        print_settings("SECRET_KEY", "DATABASES"), DJANGO_SECRET_KEY_FILE=str(key), DB_PASSWORD_FILE=str(password)
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["SECRET_KEY"] == STRONG_KEY
    assert values["DATABASES"]["default"]["PASSWORD"] == "pw with ' and \" and $x"


def test_an_unreadable_secret_file_is_one_line(run_site_python, tmp_path):
    result = run_site_python(IMPORT_SETTINGS, DJANGO_SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY_FILE=" in last_line(result.stderr) and "is not a readable file" in last_line(
        result.stderr
    )


def test_forwarded_proto_and_hsts_reach_no_further_than_asked(run_site_python):
    """Issue 23 (Low): Django does not read X-Forwarded-Proto itself (gunicorn decides, for the proxy's address only);
    HSTS covers the site, not its subdomains or the browsers' preload lists; check --deploy stays clean."""
    names = ("SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD")
    result = run_site_python(print_settings(*names), DJANGO_SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dict.fromkeys(names, False) | {"SECURE_PROXY_SSL_HEADER": None}
    on = run_site_python(
        print_settings(*names), DJANGO_SECRET_KEY=STRONG_KEY, DJANGO_TRUST_X_FORWARDED_PROTO="true",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true", DJANGO_SECURE_HSTS_PRELOAD="true",
    )  # fmt: skip
    assert json.loads(on.stdout) == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
    }
