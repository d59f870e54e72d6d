"""Settings for the site, read from the environment so one image serves every stage.

Every value comes from an environment variable with a safe default; a malformed or
missing-but-required value stops start-up with one ImproperlyConfigured line that says
which variable to fix and how.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
STAGES = ("dev", "test-qa", "stage", "prod")
STAGES_REFUSING_DEBUG = ("stage", "prod")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_str(name, default=""):
    """The variable's value, or default when unset or empty (compose passes unset variables as empty)."""
    value = os.environ.get(name, "").strip()
    return value if value else default


def env_secret(name, default=""):
    """A secret: the variable, else the content of the file NAME_FILE names (a compose or Swarm secret, as the
    entrypoint's file_env reads it), else default. Commands exec'd into a running container (manage.py through
    `docker exec`) never pass through the entrypoint, so the settings read the file themselves."""
    value = env_str(name)
    path = env_str(f"{name}_FILE")
    if value or not path:
        return value or default
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\n") or default
    except OSError as error:
        raise ImproperlyConfigured(f"{name}_FILE={path} is not a readable file ({error.strerror})") from None


def env_bool(name, default):
    value = env_str(name).lower()
    if not value:
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; set it to true or false")


def env_int(name, default):
    value = env_str(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not an integer; set it to a whole number such as {default}"
        ) from None


def env_list(name, default):
    """A comma-separated variable as a list, blanks dropped; default when unset or empty."""
    value = env_str(name)
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name, choices, default):
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not valid; set it to one of: {', '.join(choices)}")
    return value


# --- Stage and debug -------------------------------------------------------

# The images set APP_STAGE; a bare checkout (manage.py on a laptop) counts as dev.
APP_STAGE = env_choice("APP_STAGE", STAGES, "dev")
DEBUG = env_bool("DJANGO_DEBUG", False)
if DEBUG and APP_STAGE in STAGES_REFUSING_DEBUG:
    raise ImproperlyConfigured(
        f"DJANGO_DEBUG is on but APP_STAGE={APP_STAGE}; debug pages leak secrets, so unset DJANGO_DEBUG in {APP_STAGE}"
    )

# Only debug runs may fall back to a fixed key; it is public, so it must never sign anything real.
INSECURE_DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-outside-debug"
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", INSECURE_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set; set it in .env or the environment "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- Applications ------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_site.notes",
]

MIDDLEWARE = [
    # Outermost: moves SecurityMiddleware's HTTP->HTTPS redirect to SECURE_SSL_PORT (django_site/middleware.py).
    "django_site.middleware.HttpsRedirectPortMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware: static files skip the rest of the stack but still get security headers.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "django_site.urls"
WSGI_APPLICATION = "django_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------

DB_NAME = env_str("DB_NAME", "app")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": env_str("DB_HOST", "db"),
        "PORT": env_int("DB_PORT", 3306),
        "NAME": DB_NAME,
        "USER": env_str("DB_USER", "app"),
        "PASSWORD": env_secret("DB_PASSWORD", ""),
        # Persistent connections, checked before reuse so a restarted database is noticed and reconnected.
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "charset": "utf8mb4",
            # Short, so /health answers 503 quickly instead of hanging while the database is down.
            "connect_timeout": env_int("DB_CONNECT_TIMEOUT", 3),
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        },
        # The database server grants the app user all privileges on test\_% databases.
        "TEST": {
            "NAME": f"test_{DB_NAME}",
            "CHARSET": "utf8mb4",
            "COLLATION": "utf8mb4_unicode_ci",
        },
    }
}

# --- HTTPS (TLS ends at a proxy in front of the app) ---------------------------

# Debug runs are plain-HTTP development servers, so redirects, HSTS and secure cookies default off there.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# The port HTTPS is served on, when it is not the one the plain-HTTP request came to (compose: HTTPS_PORT for prod);
# 0 keeps the requested one. The redirect keeps the requested host name either way.
SECURE_SSL_PORT = env_int("DJANGO_SECURE_SSL_PORT", 0)
# The container healthcheck talks plain HTTP to the app directly; paths are matched without the leading slash.
SECURE_REDIRECT_EXEMPT = [r"^health/?$"]
# Off by default: gunicorn sets the scheme from X-Forwarded-Proto only for the proxy's own address
# (docker/gunicorn.conf.py), while this header would be believed from anyone who reaches the published port.
SECURE_PROXY_SSL_HEADER = None
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    # Only safe when every request passes a proxy that always sets or strips this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
# Off by default: the site is often visited as localhost, and these reach beyond it (every subdomain; browsers'
# built-in preload lists). Turn them on for a real domain you own, with all its subdomains on HTTPS.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# check --deploy warns when they are off; here that is the default on purpose, so only an unchosen default warns.
SILENCED_SYSTEM_CHECKS = [
    *(["security.W005"] if not SECURE_HSTS_INCLUDE_SUBDOMAINS else []),
    *(["security.W021"] if not SECURE_HSTS_PRELOAD else []),
]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Static files ------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed copies made by collectstatic at image build time, served by WhiteNoise.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Internationalisation ------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TZ", "UTC")
USE_I18N = True
USE_TZ = True

# --- Logging: everything to stdout, where docker collects it ---------------------------

LOG_LEVEL = env_choice("DJANGO_LOG_LEVEL", LOG_LEVELS, "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"},
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Drop Django's own stderr and mail handlers; its records (django.request errors included) reach root.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
    },
}
