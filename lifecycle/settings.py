"""The one settings table, and how it is overridden.

Precedence, lowest first: the defaults below; `.lifecycle/images.env` (written by
`invoke images.offline`, the switch to locally built base images); the user's `.env`; the process
environment; a task's command-line flag. Names are the ones `docker/compose.yaml` interpolates, so the
same variable means the same thing to the suite and to a plain `docker compose` call.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UserError
from lifecycle.stages import Stage

ROOT = Path(__file__).resolve().parent.parent
IMAGES_ENV = Path(".lifecycle") / "images.env"
ENGINE_CACHE = Path(".lifecycle") / "engine.json"  # the preflight's answers (probes.engine_fingerprint)
USER_ENV = Path(".env")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


TABLE = (
    Setting("PROJ_NAME", "project", "Image name: stages are tagged PROJ_NAME:STAGE; also the app folder."),
    Setting("COMPOSE_PROJECT_NAME", "", "Compose project; empty means PROJ_NAME plus a hash of the checkout path."),
    Setting("BASE_IMAGE", "python", "Python base image repository (FROM BASE_IMAGE:PY_VERSION-PY_BASE)."),
    Setting("PY_VERSION", "3.12", "Python version: the base image's tag prefix."),
    Setting("PY_BASE", "slim", "Base image variant: the base image's tag suffix."),
    Setting("DB_IMAGE", "mysql:8.4", "Database image, MySQL-compatible with the official mysql interface."),
    Setting("TZ", "UTC", "Time zone of every image."),
    Setting("ZIP_DIR", "updated_zip", "Folder (in the checkout) that holds the code zip and its manifest."),
    Setting("ZIP_NAME", "Project_playground.zip", "File name of the code zip that stage and prod embed."),
    Setting("EXTRA_CA_DIR", "", "Folder of *.crt CA certificates to trust in every image that fetches packages."),
    Setting("APP_PORT", "8000", "Host port the dev, stage and prod site is published on (127.0.0.1)."),
    Setting("DEBUG_PORT", "5678", "Host port of debugpy (127.0.0.1) under invoke up --stage dev --debug."),
    Setting("WAIT_TIMEOUT", "180", "Seconds invoke up waits for the containers to turn healthy."),
    Setting("DB_HOST", "db", "Swarm stack database: db runs one in the stack; another name is external."),
    Setting("DB_NODE_LABEL", "lifecycle.db", "Swarm node label (LABEL=true) of the node holding the database volume."),
    Setting("DEPLOY_REPLICAS", "2", "App replicas of invoke deploy when --replicas is not given."),
    Setting("DEPLOY_TIMEOUT", "300", "Seconds invoke deploy waits for each step (database, migrate job, update)."),
    Setting("APP_CPUS", "1", "CPU limit of each app replica in the swarm stack."),
    Setting("APP_MEMORY", "512M", "Memory limit of each app replica in the swarm stack."),
    Setting("DEBIAN_MIRROR", "http://deb.debian.org/debian", "Debian mirror for the offline base images."),
    Setting("DEBIAN_SUITE", "trixie", "Debian release of the offline base images."),
    Setting("BACKUP_DIR", "backups", "Folder (relative to the checkout, or absolute) of database backups."),
    Setting("BACKUP_KEEP", "10", "Automatic backups kept per project; older ones are pruned (never manual ones)."),
    Setting("OFFLINE_PREFIX", "lifecycle", "Repository prefix of the offline base images (PREFIX/python, ...)."),
    Setting("CLUSTER_NAME", "lifecycle", "Name of the on-machine cluster: prefix of its namespaces and node names."),
    Setting("CLUSTER_SUBNET", "198.18.7.0/24", "Address range of the cluster's bridge; used nowhere on the host."),
    Setting(
        "CLUSTER_REGISTRY_PORT", "5050", "Port of the cluster's registry: 127.0.0.1:PORT on the host and every node."
    ),
    Setting("CLUSTER_REGISTRY_IMAGE", "lifecycle/registry:2.8", "Registry image loaded into the manager's engine."),
    Setting("CLUSTER_DIR", "/var/lib/lifecycle-cluster", "Folder of the nodes' data roots, sockets and logs."),
    Setting("REGISTRY", "", "Where releases are pushed (host[:port][/path]); empty: the local registry."),
    Setting("REGISTRY_PORT", "5000", "Host port (on 127.0.0.1) of the local registry (invoke registry.up)."),
    Setting("REGISTRY_IMAGE", "registry:2", "Image of the local registry; the offline one when not pullable."),
    Setting(
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
)
DEFAULTS = {s.name: s.default for s in TABLE}

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
# Compose's dotenv rules: in an unquoted value, a `#` after whitespace starts a comment; `$NAME`, `${NAME}` and
# `${NAME:-default}` expand in unquoted and double-quoted values, never in single-quoted ones.
_INLINE_COMMENT = re.compile(r"\s+#.*$")
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_DOUBLE_QUOTE_ESCAPES = {"n": "\n", "r": "\r"}


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """`$NAME`, `${NAME}`, `${NAME-default}`, `${NAME:-default}` as compose expands them in `.env`."""

    def replace(match: re.Match[str]) -> str:
        braced, operator, default, bare = match.groups()
        found = lookup(braced or bare)
        if (operator == ":-" and not found) or (operator == "-" and found is None):
            return default
        return found or ""

    return _REFERENCE.sub(replace, value)


def unescape_double_quoted(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _DOUBLE_QUOTE_ESCAPES.get(m.group(1), m.group(1)), value)


def parse_value(key: str, raw: str, lookup: Callable[[str], str | None]) -> str:
    """KEY's value as compose reads it; raises ValueError (what is wrong; what to do) when it is malformed."""
    if raw[:1] not in ("'", '"'):
        return expand(_INLINE_COMMENT.sub("", raw).rstrip(), lookup)
    quote = raw[0]
    end = re.search(r"(?<!\\)" + quote, raw[1:])
    if not end:
        raise ValueError(f"unterminated quote in {key}; close the quote")
    inside, rest = raw[1 : end.start() + 1], raw[end.end() + 1 :]
    if rest.strip() and not re.match(r"\s+#", rest):
        raise ValueError(f"text after the closing quote of {key}: {rest.strip()[:20]!r}; start a comment with ' #'")
    return inside if quote == "'" else expand(unescape_double_quoted(inside), lookup)


def parse_env_file(text: str, source: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Read `KEY=VALUE` lines as `docker compose` reads `.env` (comments, `export`, quotes, inline comments
    after ` #`, variable references from earlier lines or the environment), strictly: a bad line is an error."""
    values: dict[str, str] = {}
    environ = environ or {}

    def lookup(name: str) -> str | None:
        return environ.get(name, values.get(name))

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise UserError(f"{source} line {number}: expected KEY=VALUE, got {line[:40]!r}; fix or remove that line")
        key, value = match.groups()
        try:
            values[key] = parse_value(key, value, lookup)
        except ValueError as error:
            raise UserError(f"{source} line {number}: {error}") from None
    return values


def read_env_file(root: Path, relative: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    path = root / relative
    if not path.is_file():
        return {}
    return parse_env_file(path.read_text(encoding="utf-8"), str(relative), environ)


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

    def image(self, stage: Stage) -> str:
        return f"{self['PROJ_NAME']}:{stage.tag}"

    def sbom_image(self, stage: Stage) -> str:
        return f"{self['PROJ_NAME']}:{stage.sbom}"

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
    files = {**read_env_file(root, IMAGES_ENV, environ), **read_env_file(root, USER_ENV, environ)}
    merged = {**files, **environ}
    # An empty value means the default, as it does for compose's ${VAR:-default}.
    values = {name: merged.get(name) or default for name, default in DEFAULTS.items()}
    validate(values)
    # HOST_UID/GID: dev and test-qa run as the host user, so files they write on the host are theirs.
    host = {"HOST_UID": str(os.getuid()), "HOST_GID": str(os.getgid())}
    env = {**host, **files, **environ, **values}
    # COMPOSE_BAKE=false is deprecated (a warning on every build): unset, compose builds with bake where buildx is
    # installed and with its own BuildKit client otherwise (compose.build silences that fallback's warning).
    env.pop("COMPOSE_BAKE", None)
    return Settings(root, values, env)


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
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", values["PROJ_NAME"]):
        raise UserError(
            f"PROJ_NAME={values['PROJ_NAME']!r} is not a valid image name; "
            "use lowercase letters, digits, '-', '_' or '.'"
        )
    project = values["COMPOSE_PROJECT_NAME"]
    if project and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project):
        raise UserError(
            f"COMPOSE_PROJECT_NAME={project!r} is not a valid compose project name; "
            "use lowercase letters, digits, '-' or '_', or leave it empty"
        )
