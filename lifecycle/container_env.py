"""The variables compose passes to the app containers, checked on the host before anything is built.

The containers check them too (the settings module, gunicorn's config, the entrypoint), but only once they start,
after a build; the same rules here turn a typo in `.env` into one line before the first build step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lifecycle.errors import UserError

BOOLEAN_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off")  # django_site/settings.py's env_bool


@dataclass(frozen=True)
class Rule:
    name: str
    choices: tuple[str, ...] = ()  # the value must be one of these
    minimum: int | None = None  # the value must be a whole number >= minimum

    def problem(self, value: str) -> str | None:
        """Why value is refused ('' and unset mean the default, as in the containers), or None."""
        if self.choices and value not in self.choices:
            return f"is not one of: {', '.join(self.choices)}"
        if self.minimum is not None and not (value.isdigit() and int(value) >= self.minimum):
            return f"is not a whole number >= {self.minimum}"
        return None


RULES = (
    Rule("DJANGO_LOG_LEVEL", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    Rule("LOG_FORMAT", choices=("json", "text")),
    Rule("GUNICORN_LOG_LEVEL", choices=("debug", "info", "warning", "error", "critical")),
    Rule("DJANGO_MIGRATE", choices=("true", "false")),  # the entrypoint migrates on exactly `true`
    *(
        Rule(name, choices=BOOLEAN_WORDS)
        for name in (
            "DJANGO_SECURE_SSL_REDIRECT",
            "DJANGO_TRUST_X_FORWARDED_PROTO",
            "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS",
            "DJANGO_SECURE_HSTS_PRELOAD",
            "DJANGO_SECURE_COOKIES",
        )
    ),
    *(Rule(name, minimum=0) for name in ("DB_WAIT_TIMEOUT", "DB_CONNECT_TIMEOUT", "DB_CONN_MAX_AGE")),
    Rule("DJANGO_SECURE_HSTS_SECONDS", minimum=0),
    *(
        Rule(name, minimum=1)
        for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "GUNICORN_GRACEFUL_TIMEOUT")
    ),
    Rule("GUNICORN_KEEPALIVE", minimum=1),
    Rule("GUNICORN_MAX_REQUESTS", minimum=0),
)


def check(env: Mapping[str, str]) -> None:
    """Raise a one-line UserError for the first malformed value the containers would read."""
    for rule in RULES:
        value = env.get(rule.name, "").strip()
        problem = value and rule.problem(value)
        if problem:
            raise UserError(f"{rule.name}={value!r} {problem}; fix it in .env or the environment (nothing was built)")


# Names whose values are never put on a command line (which the runner prints): passed as `--env NAME`.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def container_env_items(items: Sequence[str], environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """`--env` items for a container -> (what goes on the command line, what goes in the runner's environment).

    `NAME=VALUE` stays on the command line unless NAME looks secret; then only NAME goes there and the value
    travels in the environment, where compose looks it up. `NAME` alone takes the value from `environ`."""
    flags, values = [], {}
    for item in items:
        name, given, value = item.partition("=")
        if not ENV_NAME.fullmatch(name):
            raise UserError(f"--env {item!r}: expected NAME or NAME=VALUE with a variable name; fix the option")
        if not given and name not in environ:
            raise UserError(f"--env {name}: {name} is not set in your environment; export it or use --env {name}=VALUE")
        if given and SECRET_NAME.search(name):
            flags.append(name)
            values[name] = value
        else:
            flags.append(item)
    return flags, values
