"""The one settings table, and how it is overridden.

Precedence, lowest first: the defaults below; the project's committed `[tool.lifecycle]` table in its
`pyproject.toml` (only the rows marked `project`: what the project is, never a machine's ports or paths);
`.lifecycle/images.env` (written by `invoke images.offline`, the switch to locally built base images); the
user's `.env`; the process environment; a task's command-line flag. Names are the ones `docker/compose.yaml`
interpolates, so the same variable means the same thing to the suite and to a plain `docker compose` call.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UserError
from lifecycle.layout import find_root, suite_code
from lifecycle.stages import Stage

ROOT = find_root()
IMAGES_ENV = Path(".lifecycle") / "images.env"
ENGINE_CACHE = Path(".lifecycle") / "engine.json"  # the preflight's answers (probes.engine_fingerprint)
USER_ENV = Path(".env")
PYPROJECT = Path("pyproject.toml")
LIFECYCLE_TABLE = "[tool.lifecycle]"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    # Whether the project's committed [tool.lifecycle] may set it (as `kebab-case`, or NAME_PART as a key of the
    # table [tool.lifecycle.name]); machine settings (ports, local folders) only come from .env and the environment.
    project: bool = False
    # A TOML list is joined with this into the value ("" means a list is refused).
    separator: str = ""


def project_setting(name: str, default: str, meaning: str, separator: str = "") -> Setting:
    return Setting(name, default, meaning, project=True, separator=separator)


LAYER_HELP = {
    "DATABASE": "DATABASES['default'] is the stack's MySQL from DB_*, whatever the project's settings say.",
    "SECRET_KEY": "SECRET_KEY from DJANGO_SECRET_KEY (or its _FILE); required in stage and prod.",
    "DEBUG": "DEBUG off in stage and prod whatever the project's default; DJANGO_DEBUG in dev.",
    "HOSTS": "ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS extended with DJANGO_ALLOWED_HOSTS/..._ORIGINS and loopback.",
    "PROXY": "SECURE_PROXY_SSL_HEADER only when DJANGO_TRUST_X_FORWARDED_PROTO; health never redirected.",
    "STATIC": "STATIC_ROOT set, WhiteNoise added when the project serves no static files of its own.",
    "MEDIA": "MEDIA_ROOT on the media volume (DJANGO_MEDIA_ROOT) when one is mounted.",
    "LOGGING": "LOGGING to stdout at DJANGO_LOG_LEVEL.",
    "HEALTH": "The suite answers HEALTH_PATH (a database check) when the project's own URLs do not route it.",
}
LAYER_PARTS = tuple(LAYER_HELP)  # lifecycle_site.layer.PARTS (a unit test checks they agree)


TABLE = (
    project_setting("PROJ_NAME", "project", "Name of the project: the release repository REGISTRY/PROJ_NAME."),
    Setting(
        "COMPOSE_PROJECT_NAME",
        "",
        "Compose project and local image name (PROJECT:STAGE); empty means PROJ_NAME plus a hash of the checkout path.",
    ),
    project_setting("BASE_IMAGE", "python", "Python base image repository (FROM BASE_IMAGE:PY_VERSION-PY_BASE)."),
    project_setting("PY_VERSION", "3.12", "Python version: the base image's tag prefix."),
    project_setting("PY_BASE", "slim", "Base image variant: the base image's tag suffix."),
    project_setting("DB_IMAGE", "mysql:8.4", "Database image, MySQL-compatible with the official mysql interface."),
    project_setting("TZ", "UTC", "Time zone of every image."),
    project_setting("ZIP_DIR", "updated_zip", "Folder (in the checkout) that holds the code zip and its manifest."),
    project_setting("ZIP_NAME", "Project_playground.zip", "File name of the code zip that stage and prod embed."),
    Setting("EXTRA_CA_DIR", "", "Folder of *.crt CA certificates to trust in every image that fetches packages."),
    Setting("APP_PORT", "8000", "Host port the dev, stage and prod site is published on (127.0.0.1)."),
    Setting("DEBUG_PORT", "5678", "Host port of debugpy (127.0.0.1) under invoke up --stage dev --debug."),
    project_setting("WAIT_TIMEOUT", "180", "Seconds invoke up waits for the containers to turn healthy."),
    project_setting("DB_HOST", "db", "Swarm stack database: db runs one in the stack; another name is external."),
    Setting("DB_NODE_LABEL", "lifecycle.db", "Swarm node label (LABEL=true) of the node holding the database volume."),
    project_setting("DEPLOY_REPLICAS", "2", "App replicas of invoke deploy when --replicas is not given."),
    project_setting(
        "DEPLOY_TIMEOUT", "300", "Seconds invoke deploy waits for each step (database, migrate job, update)."
    ),
    project_setting("APP_CPUS", "1", "CPU limit of each app replica in the swarm stack."),
    project_setting("APP_MEMORY", "512M", "Memory limit of each app replica in the swarm stack."),
    Setting("DEBIAN_MIRROR", "http://deb.debian.org/debian", "Debian mirror for the offline base images."),
    Setting("DEBIAN_SUITE", "trixie", "Debian release of the offline base images."),
    Setting("BACKUP_DIR", "backups", "Folder (relative to the checkout, or absolute) of database backups."),
    project_setting(
        "BACKUP_KEEP", "10", "Automatic backups kept per project; older ones are pruned (never manual ones)."
    ),
    Setting("OFFLINE_PREFIX", "lifecycle", "Repository prefix of the offline base images (PREFIX/python, ...)."),
    Setting("CLUSTER_NAME", "lifecycle", "Name of the on-machine cluster: prefix of its namespaces and node names."),
    Setting("CLUSTER_SUBNET", "198.18.7.0/24", "Address range of the cluster's bridge; used nowhere on the host."),
    Setting(
        "CLUSTER_REGISTRY_PORT", "5050", "Port of the cluster's registry: 127.0.0.1:PORT on the host and every node."
    ),
    Setting("CLUSTER_REGISTRY_IMAGE", "lifecycle/registry:2.8", "Registry image loaded into the manager's engine."),
    Setting("CLUSTER_DIR", "/var/lib/lifecycle-cluster", "Folder of the nodes' data roots, sockets and logs."),
    project_setting("REGISTRY", "", "Where releases are pushed (host[:port][/path]); empty: the local registry."),
    Setting("REGISTRY_PORT", "5000", "Host port (on 127.0.0.1) of the local registry (invoke registry.up)."),
    project_setting("REGISTRY_IMAGE", "registry:2", "Image of the local registry; the offline one when not pullable."),
    project_setting(
        "PROXY_IMAGE", "haproxy:3.0", "Image of the TLS proxy in front of prod; the offline one when not pullable."
    ),
    Setting("SIGNING_PUBLIC_KEY", "signing/cosign.pub", "Public key deploys verify releases with (committed)."),
    Setting(
        "SIGNING_PRIVATE_KEY", ".lifecycle/signing/cosign.private", "Private key invoke release signs with (0600)."
    ),
    Setting("SIGNING_PASSPHRASE_FILE", ".lifecycle/signing/passphrase", "File holding the private key's passphrase."),
    Setting("ALLOW_UNSIGNED", "false", "true: deploy unsigned images too (a transition; warned on every deploy)."),
    Setting("HTTPS_PORT", "8443", "Host port (on 127.0.0.1) where the proxy serves prod over HTTPS."),
    Setting("TLS_CERT_FILE", "", "PEM certificate (chain) the proxy serves; empty: the one in .lifecycle/tls/."),
    Setting("TLS_KEY_FILE", "", "PEM private key of TLS_CERT_FILE; empty: the one in .lifecycle/tls/."),
    # The adopted project: what `invoke adopt` detects and writes into [tool.lifecycle]; the defaults are this
    # repository's own site, django_site, the project it adopts by default.
    project_setting("PROJECT_DIR", ".", "Folder (in the checkout) that holds manage.py."),
    project_setting("CODE", "manage.py django_site", "Paths (in PROJECT_DIR) the code zip carries.", " "),
    project_setting(
        "TESTS", "", "Paths (in PROJECT_DIR) test-qa adds to the code: tests and pytest config outside CODE.", " "
    ),
    project_setting("SETTINGS_DEV", "django_site.settings", "The project's settings module in dev."),
    project_setting("SETTINGS_TEST", "", "The project's settings module in test-qa; empty: SETTINGS_DEV."),
    project_setting("SETTINGS_PROD", "django_site.settings", "The project's settings module in stage and prod."),
    project_setting("WSGI_APP", "django_site.wsgi:application", "The project's WSGI application (module:name)."),
    project_setting("REQUIREMENTS", "requirements/runtime.txt", "Runtime dependency sources (files).", " "),
    project_setting("REQUIREMENTS_TEST", "requirements/test.txt", "Test dependency sources (files).", " "),
    project_setting(
        "BUILD_PACKAGES",
        "build-essential pkg-config default-libmysqlclient-dev",
        "Debian packages to build the dependencies (headers, compilers).",
        " ",
    ),
    project_setting("RUNTIME_PACKAGES", "libmariadb3", "Debian packages the dependencies need at run time.", " "),
    project_setting("BUILD_STEPS", "", "manage.py commands run at image build after collectstatic (compress).", ";"),
    project_setting("RELEASE_COMMANDS", "", "manage.py commands run once per deploy after migrate.", ";"),
    project_setting("HEALTH_PATH", "/health", "Path of the health check (the suite's, or the project's own)."),
    project_setting("TEST_RUNNER", "pytest", "How test-qa runs the project's tests: pytest or django."),
    project_setting(
        "MEDIA",
        "false",
        "true: user uploads on their own volume (MEDIA_ROOT), carried by db.backup/db.restore; adopt detects it.",
    ),
    *(project_setting(f"LAYER_{part}", "true", f"Settings layer: {meaning}") for part, meaning in LAYER_HELP.items()),
)
DEFAULTS = {s.name: s.default for s in TABLE}
BY_NAME = {s.name: s for s in TABLE}

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
# Compose's dotenv rules: in an unquoted value, a `#` after whitespace starts a comment; `$NAME`, `${NAME}` and
# `${NAME:-default}` expand in unquoted and double-quoted values, never in single-quoted ones.
# Every pattern here does a bounded amount of work at each position, so a line costs time linear in its length
# (a `\s+#.*$` search was quadratic: 64 KiB of spaces took seconds); see docs/security.md.
_COMMENT_START = re.compile(r"\s#")
# The start of a reference: `$NAME`, or `${NAME` followed by `}`, `-` or `:-`; the closing brace is found by
# expand itself, with one forward scan for the whole value.
_REFERENCE_START = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(:?-|(?=\}))|([A-Za-z_][A-Za-z0-9_]*))")
_DOUBLE_QUOTE_ESCAPES = {"n": "\n", "r": "\r"}


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """`$NAME`, `${NAME}`, `${NAME-default}`, `${NAME:-default}` as compose expands them in `.env`; a `${` that no
    `}` closes stays as written. Linear in the value's length, however many references are left open."""
    parts: list[str] = []
    copied = searched = 0  # value[:copied] is in parts; the next reference starts at or after `searched`
    close = value.find("}")  # the first `}` at or after the current reference (-1: none is left)
    while match := _REFERENCE_START.search(value, searched):
        braced, operator, bare = match.groups()
        searched = match.end()
        if bare:
            replacement, end = lookup(bare) or "", match.end()
        else:
            if 0 <= close < match.end():
                close = value.find("}", match.end())
            if close == -1:  # no `}` closes it (nor any later `${`): it stays as written
                continue
            default, found = value[match.end() : close], lookup(braced)
            use_default = (operator == ":-" and not found) or (operator == "-" and found is None)
            replacement, end = (default if use_default else found or ""), close + 1
        parts += [value[copied : match.start()], replacement]
        copied = searched = end
    return "".join([*parts, value[copied:]])


def unescape_double_quoted(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _DOUBLE_QUOTE_ESCAPES.get(m.group(1), m.group(1)), value)


def strip_inline_comment(raw: str) -> str:
    """An unquoted value without its ` # comment` and trailing whitespace."""
    comment = _COMMENT_START.search(raw)
    return (raw[: comment.start()] if comment else raw).rstrip()


def parse_value(key: str, raw: str, lookup: Callable[[str], str | None]) -> str:
    """KEY's value as compose reads it; raises ValueError (what is wrong; what to do) when it is malformed.

    Messages name KEY, never any part of the value: a `.env` holds secrets, and errors end up in CI logs."""
    if raw[:1] not in ("'", '"'):
        return expand(strip_inline_comment(raw), lookup)
    quote = raw[0]
    end = re.search(r"(?<!\\)" + quote, raw[1:])
    if not end:
        raise ValueError(f"unterminated quote in {key}; close the quote")
    inside, rest = raw[1 : end.start() + 1], raw[end.end() + 1 :]
    if rest.strip() and not re.match(r"\s+#", rest):
        raise ValueError(f"text after the closing quote of {key}; start a comment with ' #' or move it inside")
    return inside if quote == "'" else expand(unescape_double_quoted(inside), lookup)


def env_file_lines(text: str) -> list[str]:
    """The lines as compose splits them: at `\n` only (a `\r` before it goes with the line's whitespace), never
    at the other characters `str.splitlines` splits on (`\v`, `\f`, `\x1c`-`\x1e`, `\x85`, `\u2028`, `\u2029`),
    so the suite and compose read the same value."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def parse_env_file(text: str, source: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Read `KEY=VALUE` lines as `docker compose` reads `.env` (comments, `export`, quotes, inline comments
    after ` #`, variable references from earlier lines or the environment), strictly: a bad line is an error
    that names its number (and KEY when there is one), never its text."""
    values: dict[str, str] = {}
    environ = environ or {}

    def lookup(name: str) -> str | None:
        return environ.get(name, values.get(name))

    for number, raw in enumerate(env_file_lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise UserError(
                f"{source} line {number}: expected KEY=VALUE (KEY of letters, digits and _, not starting with a "
                "digit); fix or remove that line"
            )
        key, value = match.groups()
        try:
            values[key] = parse_value(key, value, lookup)
        except ValueError as error:
            raise UserError(f"{source} line {number}: {error}") from None
        if "\0" in values[key]:
            raise UserError(f"{source} line {number}: {key} holds a NUL byte, which no variable can carry; remove it")
    return values


def read_env_file(root: Path, relative: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    path = root / relative
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{relative} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    return parse_env_file(text, str(relative), environ)


def table_name(key_path: tuple[str, ...]) -> str:
    """[tool.lifecycle] key path -> setting name: ("settings", "dev") -> SETTINGS_DEV, ("proj-name",) -> PROJ_NAME."""
    return "_".join(key_path).upper().replace("-", "_")


def flatten(table: Mapping[str, object], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    found: dict[tuple[str, ...], object] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            found.update(flatten(value, (*prefix, key)))
        else:
            found[(*prefix, key)] = value
    return found


def toml_value(setting: Setting, where: str, value: object) -> str:
    """A TOML value as the setting's string: booleans as true/false, a list joined (where the row allows one)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list) and setting.separator and all(isinstance(item, str) for item in value):
        if any(setting.separator.strip() and setting.separator in item for item in value):
            raise UserError(f"{where}: an item holds {setting.separator!r}, which separates the items; split it")
        return setting.separator.join(value)
    kind = "a list of strings" if setting.separator else "a string, number or boolean"
    raise UserError(f"{where} must be {kind}, not {value!r}")


def read_project_table(root: Path, relative: Path = PYPROJECT) -> dict[str, str]:
    """The [tool.lifecycle] table of the project's pyproject.toml as setting values; refuses an unknown key and a
    machine setting (which belongs in .env), naming it."""
    path = root / relative
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("lifecycle", {})
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{relative} is not valid TOML: {error}; fix it") from None
    return project_table_values(table, relative)


def project_table_values(table: Mapping[str, object], relative: Path = PYPROJECT) -> dict[str, str]:
    """A parsed [tool.lifecycle] table as setting values, each key checked (see read_project_table)."""
    values: dict[str, str] = {}
    for key_path, value in flatten(table).items():
        where = f"{relative} {LIFECYCLE_TABLE} {'.'.join(key_path)}"
        name = table_name(key_path)
        setting = BY_NAME.get(name)
        if setting is None:
            raise UserError(f"{where} is not a setting; remove it or see docs/adopt.md for the keys")
        if not setting.project:
            raise UserError(f"{where} is a machine setting; set {name} in .env or the environment instead")
        values[name] = toml_value(setting, where, value)
    return values


def table_key(setting: Setting) -> str:
    """The [tool.lifecycle] key of a project row: SETTINGS_PROD -> settings.prod, LAYER_STATIC -> layer.static,
    PY_VERSION -> py-version."""
    for prefix in ("SETTINGS", "LAYER"):
        if setting.name.startswith(f"{prefix}_"):
            return f"{prefix.lower()}.{setting.name[len(prefix) + 1 :].lower().replace('_', '-')}"
    return setting.name.lower().replace("_", "-")


def project_rows_markdown() -> str:
    """docs/adopt.md's table of every row [tool.lifecycle] may set (a unit test keeps the page in step)."""
    lines = ["| Key | Setting | Default | Meaning |", "| --- | --- | --- | --- |"]
    for setting in TABLE:
        if setting.project:
            default = f"`{setting.default}`" if setting.default else "(empty)"
            lines.append(f"| `{table_key(setting)}` | `{setting.name}` | {default} | {setting.help} |")
    return "\n".join(lines) + "\n"


def default_project_name(proj_name: str, root: Path) -> str:
    """One compose project per checkout, so two clones or CI jobs on one machine never collide."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    return re.sub(r"[^a-z0-9_-]", "-", f"{proj_name}-{digest}".lower())  # compose allows fewer characters than images


@dataclass(frozen=True)
class Settings:
    """Resolved values of TABLE plus the environment every docker command runs with."""

    root: Path
    values: Mapping[str, str]
    env: Mapping[str, str]

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    @property
    def project_name(self) -> str:
        return self["COMPOSE_PROJECT_NAME"] or default_project_name(self["PROJ_NAME"], self.root)

    @property
    def zip_path(self) -> Path:
        return self.root / self["ZIP_DIR"] / self["ZIP_NAME"]

    @property
    def code_root(self) -> Path:
        """The folder of manage.py (PROJECT_DIR): the code zip's paths are relative to it."""
        return self.root / self["PROJECT_DIR"]

    @property
    def code_include(self) -> tuple[str, ...]:
        """What the code zip carries (CODE), relative to code_root."""
        return tuple(self["CODE"].split())

    def image(self, stage: Stage) -> str:
        """The stage's local image: named after this checkout's compose project, so no other checkout moves it."""
        return f"{self.project_name}:{stage.tag}"

    def sbom_image(self, stage: Stage) -> str:
        return f"{self.project_name}:{stage.sbom}"

    @property
    def extra_ca_dir(self) -> Path | None:
        """EXTRA_CA_DIR resolved, here only: `~` expanded, a relative path taken from the checkout."""
        value = self["EXTRA_CA_DIR"]
        return self.root / Path(value).expanduser() if value else None

    def extra_ca_certs(self) -> list[Path]:
        """The *.crt files of EXTRA_CA_DIR, sorted ([] when it is unset); refuses a folder that has none."""
        folder = self.extra_ca_dir
        if folder is None:
            return []
        if not folder.is_dir():
            raise UserError(f"EXTRA_CA_DIR={folder} is not a folder; point it at a folder of *.crt files or unset it")
        certificates = sorted(folder.glob("*.crt"))
        if not certificates:
            raise UserError(f"EXTRA_CA_DIR={folder} holds no *.crt files; add the proxy's CA certificates or unset it")
        return certificates

    @property
    def registry(self) -> str:
        """Where releases go: REGISTRY, or the local registry that `invoke registry.up` runs."""
        return self["REGISTRY"] or f"127.0.0.1:{self['REGISTRY_PORT']}"

    @property
    def release_repository(self) -> str:
        return f"{self.registry}/{self['PROJ_NAME']}"

    @property
    def base_image(self) -> str:
        return f"{self['BASE_IMAGE']}:{self['PY_VERSION']}-{self['PY_BASE']}"

    def override(self, **changes: str | int | None) -> Settings:
        """A copy with CLI flags applied (None means the flag was not given), checked like the rest."""
        given = {k: str(v) for k, v in changes.items() if v is not None}
        values = {**self.values, **given}
        validate(values)
        return Settings(self.root, values, {**self.env, **given})


def load_settings(root: Path = ROOT, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    project = read_project_table(root)
    files = {**read_env_file(root, IMAGES_ENV, environ), **read_env_file(root, USER_ENV, environ)}
    merged = {**project, **files, **environ}
    # An empty value means the default, as it does for compose's ${VAR:-default}.
    values = {name: merged.get(name) or default for name, default in DEFAULTS.items()}
    validate(values)
    # HOST_UID/GID: dev and test-qa run as the host user, so files they write on the host are theirs.
    host = {"HOST_UID": str(os.getuid()), "HOST_GID": str(os.getgid())}
    # SUITE_CODE: where the build context holds the suite's code the images carry (lifecycle/layout.py).
    env = {**host, "SUITE_CODE": suite_code(root), **project, **files, **environ, **values}
    # COMPOSE_BAKE=false is deprecated (a warning on every build): unset, compose builds with bake where buildx is
    # installed and with its own BuildKit client otherwise (compose.build silences that fallback's warning).
    env.pop("COMPOSE_BAKE", None)
    return Settings(root, values, env)


# One component of an image repository, as the engine accepts it (`a-b`, `a.b`, `a_b`, `a__b`; no separator at an end).
IMAGE_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# host[:port][/path], lowercase as image references must be: registry.example.com/team, 127.0.0.1:5000
REGISTRY_FORMAT = re.compile(r"[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")


def validate(values: Mapping[str, str]) -> None:
    for name in ("APP_PORT", "DEBUG_PORT", "HTTPS_PORT", "REGISTRY_PORT"):
        port = values[name]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"{name}={port!r} is not a port number; set it to a number from 1 to 65535")
    wait = values["WAIT_TIMEOUT"]
    if not wait.isdigit() or int(wait) == 0:
        raise UserError(f"WAIT_TIMEOUT={wait!r} is not a number of seconds; set it to a whole number above 0")
    if values["REGISTRY"] and not REGISTRY_FORMAT.fullmatch(values["REGISTRY"]):
        raise UserError(
            f"REGISTRY={values['REGISTRY']!r} is not a registry address; use HOST[:PORT][/PATH] in lowercase, "
            "e.g. registry.example.com/team, or leave it empty for the local registry"
        )
    if not values["BACKUP_KEEP"].isdigit() or int(values["BACKUP_KEEP"]) < 1:
        raise UserError(f"BACKUP_KEEP={values['BACKUP_KEEP']!r} is not a count of at least 1; set it to e.g. 10")
    if not values["DEPLOY_TIMEOUT"].isdigit():
        raise UserError(f"DEPLOY_TIMEOUT={values['DEPLOY_TIMEOUT']!r} is not a whole number of seconds; e.g. 300")
    if not IMAGE_NAME.fullmatch(values["PROJ_NAME"]):
        raise UserError(
            f"PROJ_NAME={values['PROJ_NAME']!r} is not a valid image name; "
            "use lowercase letters and digits, joined by '-', '_' or '.'"
        )
    validate_project(values)
    project = values["COMPOSE_PROJECT_NAME"]
    if project and not (re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project) and IMAGE_NAME.fullmatch(project)):
        raise UserError(
            f"COMPOSE_PROJECT_NAME={project!r} is not a valid compose project and image name; "
            "use lowercase letters and digits, joined by '-' or '_', or leave it empty"
        )


MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
BOOLEAN_WORDS = ("true", "false", "1", "0", "yes", "no", "on", "off")
TEST_RUNNERS = ("pytest", "django")


def validate_project(values: Mapping[str, str]) -> None:
    """The adopted project's rows: module names, the WSGI reference, the health path, the switches."""
    for name in ("SETTINGS_DEV", "SETTINGS_TEST", "SETTINGS_PROD"):
        if values[name] and not MODULE.fullmatch(values[name]):
            raise UserError(f"{name}={values[name]!r} is not a Python module name; e.g. mysite.settings.production")
    module, _, attribute = values["WSGI_APP"].partition(":")
    if not (MODULE.fullmatch(module) and attribute.isidentifier()):
        raise UserError(f"WSGI_APP={values['WSGI_APP']!r} is not MODULE:NAME; e.g. mysite.wsgi:application")
    if not values["HEALTH_PATH"].startswith("/") or values["HEALTH_PATH"] == "/":
        raise UserError(f"HEALTH_PATH={values['HEALTH_PATH']!r} must be a path below the root; e.g. /health")
    if values["TEST_RUNNER"] not in TEST_RUNNERS:
        runners = ", ".join(TEST_RUNNERS)
        raise UserError(f"TEST_RUNNER={values['TEST_RUNNER']!r} is not valid; set it to one of: {runners}")
    if values["MEDIA"] not in ("true", "false"):
        raise UserError(f"MEDIA={values['MEDIA']!r} is not valid; set it to true (a media volume) or false")
    for part in LAYER_PARTS:
        value = values[f"LAYER_{part}"]
        if value.lower() not in BOOLEAN_WORDS:
            raise UserError(f"LAYER_{part}={value!r} is not a boolean; set it to true or false")
    folder = Path(values["PROJECT_DIR"])
    if folder.is_absolute() or ".." in folder.parts:
        raise UserError(f"PROJECT_DIR={values['PROJECT_DIR']!r} must be a folder inside the checkout; e.g. . or src")
