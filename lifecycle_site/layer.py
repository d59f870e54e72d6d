"""The container's environment applied over a project's own settings: pure functions, no Django needed.

`apply(project, environ)` takes the project's settings (upper-case names, as Django reads them) and returns them
with the stack's database, secret key, debug rule, hosts, proxy header, static and media roots, stdout
logging and Prometheus metrics (lifecycle_site/metrics.py) laid on top. Each part has a switch,
`LAYER_<PART>=false`, for a project that does it itself (`[tool.lifecycle.layer]` in its pyproject.toml sets them).
A malformed value raises LayerError with one line that names the variable; under Django it is an
ImproperlyConfigured, so the entrypoint prints it as such.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lifecycle_site import metrics

try:
    from django.core.exceptions import ImproperlyConfigured as _ConfigurationError
except ImportError:  # the layer's unit tests run on the host, without Django
    _ConfigurationError = ValueError


class LayerError(_ConfigurationError):
    """A setting the layer cannot apply; the message says which variable and what to do."""


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
STAGES = ("dev", "test-qa", "stage", "prod")
STAGES_WITHOUT_DEBUG = ("stage", "prod")
PARTS = (
    "DATABASE",
    "SECRET_KEY",
    "DEBUG",
    "HOSTS",
    "PROXY",
    "STATIC",
    "MEDIA",
    "MEDIA_SERVE",
    "LOGGING",
    "HEALTH",
    "METRICS",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"
SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
DEFAULT_STATIC_ROOT = "/app/staticfiles"
# Storage backends that serve from this server's STATIC_ROOT; any other one (S3, a CDN) serves static itself.
LOCAL_STATIC_STORAGES = ("django.contrib.staticfiles.storage.", "whitenoise.storage.")


def env_str(environ: Mapping[str, str], name: str, default: str = "") -> str:
    """NAME's value, NAME_FILE's contents when NAME is unset (Docker secrets), else default."""
    value = environ.get(name, "").strip()
    if value:
        return value
    path = environ.get(f"{name}_FILE", "").strip()
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip() or default
        except OSError as error:
            raise LayerError(f"{name}_FILE={path}: cannot read it ({error.strerror}); mount the secret there") from None
    return default


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise LayerError(f"{name}={value!r} is not a boolean; set it to true or false")


def env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise LayerError(f"{name}={value!r} is not a whole number; set it to e.g. {default}")
    return int(value)


def env_list(environ: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def switched_on(environ: Mapping[str, str], part: str) -> bool:
    """Whether the layer applies PART: LAYER_<PART>, on unless set to a false word."""
    return env_bool(environ, f"LAYER_{part}", True)


def stage_of(environ: Mapping[str, str]) -> str:
    stage = environ.get("APP_STAGE", "").strip() or "dev"
    if stage not in STAGES:
        raise LayerError(f"APP_STAGE={stage!r} is not a stage; set it to one of: {', '.join(STAGES)}")
    return stage


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------- the parts


def database(environ: Mapping[str, str]) -> dict[str, Any]:
    """The stack's MySQL as Django's `default` database, whatever the project configured (SQLite, a URL...)."""
    name = env_str(environ, "DB_NAME", "app")
    engine = env_str(environ, "DB_ENGINE", "django.db.backends.mysql")
    settings: dict[str, Any] = {
        "ENGINE": engine,
        "HOST": env_str(environ, "DB_HOST", "db"),
        "PORT": env_int(environ, "DB_PORT", 3306),
        "NAME": name,
        "USER": env_str(environ, "DB_USER", "app"),
        "PASSWORD": env_str(environ, "DB_PASSWORD"),
        # Persistent connections, checked before reuse so a restarted database is noticed and reconnected.
        "CONN_MAX_AGE": env_int(environ, "DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
    }
    if engine.endswith("mysql"):
        settings["OPTIONS"] = {
            "charset": "utf8mb4",
            # Short, so the health check answers 503 quickly instead of hanging while the database is down.
            "connect_timeout": env_int(environ, "DB_CONNECT_TIMEOUT", 3),
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        }
        # The database server grants the app user all privileges on test\_% databases.
        settings["TEST"] = {"NAME": f"test_{name}", "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    return settings


def secret_key(project: Mapping[str, Any], environ: Mapping[str, str], stage: str) -> str:
    """The suite's secret; in dev and test-qa the project's own key may stand in when none is set."""
    key = env_str(environ, "DJANGO_SECRET_KEY")
    if key:
        return key
    if stage not in STAGES_WITHOUT_DEBUG and project.get("SECRET_KEY"):
        return project["SECRET_KEY"]
    raise LayerError(
        f"DJANGO_SECRET_KEY is not set in {stage}; set it (or DJANGO_SECRET_KEY_FILE) in .env or the environment"
    )


def debug(project: Mapping[str, Any], environ: Mapping[str, str], stage: str) -> bool:
    """Off in stage and prod whatever the project's default; DJANGO_DEBUG there is refused, not ignored."""
    default = False if stage in STAGES_WITHOUT_DEBUG else bool(project.get("DEBUG", False))
    asked = env_bool(environ, "DJANGO_DEBUG", default)
    if asked and stage in STAGES_WITHOUT_DEBUG:
        raise LayerError(f"DJANGO_DEBUG is on but APP_STAGE={stage}; debug pages leak secrets, so unset it in {stage}")
    return asked


def serves_own_static(project: Mapping[str, Any]) -> bool:
    """Whether the project already serves its static files: WhiteNoise, a CDN URL or a remote storage backend."""
    if WHITENOISE in project.get("MIDDLEWARE", ()):
        return True
    url = str(project.get("STATIC_URL") or "")
    if url.startswith(("http://", "https://", "//")):
        return True
    storages = project.get("STORAGES") or {}
    backend = (storages.get("staticfiles") or {}).get("BACKEND") or project.get("STATICFILES_STORAGE") or ""
    return bool(backend) and not backend.startswith(LOCAL_STATIC_STORAGES)


def with_whitenoise(middleware: list[str]) -> list[str]:
    """WhiteNoise right after SecurityMiddleware (first when there is none): static files skip the rest."""
    middleware = list(middleware)
    at = middleware.index(SECURITY_MIDDLEWARE) + 1 if SECURITY_MIDDLEWARE in middleware else 0
    middleware.insert(at, WHITENOISE)
    return middleware


LOG_FORMATS = ("json", "text")


def log_format(environ: Mapping[str, str]) -> str:
    """LOG_FORMAT: json (one object per line with the request's id: lifecycle_site/requestlog.py) or text."""
    value = environ.get("LOG_FORMAT", "").strip().lower() or "json"
    if value not in LOG_FORMATS:
        raise LayerError(f"LOG_FORMAT={value!r} is not valid; set it to one of: {', '.join(LOG_FORMATS)}")
    return value


def logging_config(environ: Mapping[str, str]) -> dict[str, Any]:
    level = environ.get("DJANGO_LOG_LEVEL", "").strip() or "INFO"
    if level not in LOG_LEVELS:
        raise LayerError(f"DJANGO_LOG_LEVEL={level!r} is not valid; set it to one of: {', '.join(LOG_LEVELS)}")
    formatter = log_format(environ)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "lifecycle_site.requestlog.JsonFormatter"},
        },
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": formatter}
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Drop Django's own stderr and mail handlers; its records (django.request errors included) reach root.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "level": level, "propagate": True},
        },
    }


def health_path(environ: Mapping[str, str]) -> str:
    path = environ.get("HEALTH_PATH", "").strip() or "/health"
    if not path.startswith("/") or path == "/":
        raise LayerError(f"HEALTH_PATH={path!r} must be a path below the root, e.g. /health")
    return path.rstrip("/")


# --------------------------------------------------------------------------------------------- the layer


def apply(
    project: Mapping[str, Any],
    environ: Mapping[str, str],
    installed: Callable[[str], bool] = lambda _module: True,
) -> dict[str, Any]:
    """The project's settings with every switched-on part of the container's environment applied.

    `installed(module)` says whether a module can be imported (WhiteNoise and django-prometheus are added only when
    it can).
    LIFECYCLE_APPLIED lists the parts that changed something, for the entrypoint's log and the tests.
    """
    settings = dict(project)
    stage = stage_of(environ)
    applied: list[str] = []

    def on(part: str) -> bool:
        return switched_on(environ, part)

    if on("DATABASE"):
        settings["DATABASES"] = {**(project.get("DATABASES") or {}), "default": database(environ)}
        applied.append("DATABASE")
    if on("SECRET_KEY"):
        settings["SECRET_KEY"] = secret_key(project, environ, stage)
        applied.append("SECRET_KEY")
    if on("DEBUG"):
        settings["DEBUG"] = debug(project, environ, stage)
        applied.append("DEBUG")
    if on("HOSTS"):
        # Loopback always: the container's own health check and `invoke shell` clients talk to 127.0.0.1.
        hosts = [*(project.get("ALLOWED_HOSTS") or []), *env_list(environ, "DJANGO_ALLOWED_HOSTS"), *LOOPBACK_HOSTS]
        settings["ALLOWED_HOSTS"] = unique(hosts)
        origins = [*(project.get("CSRF_TRUSTED_ORIGINS") or []), *env_list(environ, "DJANGO_CSRF_TRUSTED_ORIGINS")]
        settings["CSRF_TRUSTED_ORIGINS"] = unique(origins)
        applied.append("HOSTS")
    if on("PROXY"):
        # TLS ends at the suite's proxy. gunicorn takes the scheme from its X-Forwarded-Proto for the proxy's
        # address alone (forwarded_allow_ips); this header would be believed from anyone who reaches the published
        # port, so it is set only when asked for, and a project's own one is dropped.
        trusted = env_bool(environ, "DJANGO_TRUST_X_FORWARDED_PROTO", False)
        settings["SECURE_PROXY_SSL_HEADER"] = ("HTTP_X_FORWARDED_PROTO", "https") if trusted else None
        # The container's health check talks plain HTTP to the app: never redirected to HTTPS.
        exempt = f"^{health_path(environ).lstrip('/')}/?$"
        settings["SECURE_REDIRECT_EXEMPT"] = unique([*(project.get("SECURE_REDIRECT_EXEMPT") or []), exempt])
        applied.append("PROXY")
    if on("STATIC"):
        settings["STATIC_URL"] = project.get("STATIC_URL") or "/static/"
        root = env_str(environ, "DJANGO_STATIC_ROOT") or project.get("STATIC_ROOT") or DEFAULT_STATIC_ROOT
        settings["STATIC_ROOT"] = str(root)
        if not serves_own_static(project) and installed("whitenoise"):
            settings["MIDDLEWARE"] = with_whitenoise(project.get("MIDDLEWARE") or [])
        applied.append("STATIC")
    media_root = env_str(environ, "DJANGO_MEDIA_ROOT")
    if on("MEDIA") and media_root:
        settings["MEDIA_ROOT"] = media_root
        settings["MEDIA_URL"] = project.get("MEDIA_URL") or "/media/"
        # Uploads group-writable: the volume's folders are the app's group (10001), which dev's host user joins.
        settings["FILE_UPLOAD_PERMISSIONS"] = project.get("FILE_UPLOAD_PERMISSIONS") or 0o664
        settings["FILE_UPLOAD_DIRECTORY_PERMISSIONS"] = project.get("FILE_UPLOAD_DIRECTORY_PERMISSIONS") or 0o2775
        applied.append("MEDIA")
    if on("LOGGING"):
        settings["LOGGING"] = logging_config(environ)
        applied.append("LOGGING")
    if on("METRICS") and installed(metrics.APP):  # after DATABASE: its backend is the one instrumented
        settings.update(metrics.instrumented(settings))
        applied.append("METRICS")
    settings["LIFECYCLE_APPLIED"] = applied
    return settings


def project_settings(module: object) -> dict[str, Any]:
    """A settings module's settings: its upper-case names, as Django reads them."""
    return {name: getattr(module, name) for name in dir(module) if name.isupper()}
