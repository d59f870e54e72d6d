"""The one settings table: every setting's name, default, one-line meaning, kind, and whether a project's
committed `[tool.lifecycle]` may set it. How the values are layered, read and checked is lifecycle/settings.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle import setting_kinds as kinds
from lifecycle.setting_kinds import Kind

TEST_RUNNERS = ("pytest", "django")


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
    kind: Kind = kinds.TEXT  # what the value may be, and its typed value (lifecycle/setting_kinds.py)

    def __post_init__(self) -> None:
        if self.separator and self.kind is kinds.TEXT:
            object.__setattr__(self, "kind", kinds.listing(self.separator))

    def convert(self, text: str) -> object:
        """The typed value of a text; ValueError with what is wrong and what to do."""
        if not text:
            return self.kind.empty
        try:
            return self.kind.convert(text)
        except ValueError as error:
            raise ValueError(str(error).replace("{default}", self.default)) from None


def project_setting(name: str, default: str, meaning: str, separator: str = "", kind: Kind = kinds.TEXT) -> Setting:
    return Setting(name, default, meaning, project=True, separator=separator, kind=kind)


LAYER_HELP = {
    "DATABASE": "DATABASES['default'] is the stack's MySQL from DB_*, whatever the project's settings say.",
    "SECRET_KEY": "SECRET_KEY from DJANGO_SECRET_KEY (or its _FILE); required in stage and prod.",
    "DEBUG": "DEBUG off in stage and prod whatever the project's default; DJANGO_DEBUG in dev.",
    "HOSTS": "ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS extended with DJANGO_ALLOWED_HOSTS/..._ORIGINS and loopback.",
    "PROXY": "SECURE_PROXY_SSL_HEADER only when DJANGO_TRUST_X_FORWARDED_PROTO; health never redirected.",
    "STATIC": "STATIC_ROOT set, WhiteNoise added when the project serves no static files of its own.",
    "MEDIA": "MEDIA_ROOT on the media volume (DJANGO_MEDIA_ROOT) when one is mounted.",
    "MEDIA_SERVE": "The app serves MEDIA_URL from the media volume (no listing, nosniff, sandboxed); false: a CDN, S3.",
    "LOGGING": "LOGGING to stdout at DJANGO_LOG_LEVEL.",
    "HEALTH": "The suite answers HEALTH_PATH (a database check) when the project's own URLs do not route it.",
    "METRICS": "Prometheus /metrics for the stack's network and loopback (request latency by view and method, "
    "responses by status; django-prometheus's database backends: query time).",
}
LAYER_PARTS = tuple(LAYER_HELP)  # lifecycle_site.layer.PARTS (a unit test checks they agree)


TABLE = (
    project_setting(
        "PROJ_NAME",
        "project",
        "Name of the project: the release repository REGISTRY/PROJ_NAME.",
        kind=kinds.PROJECT_IMAGE_NAME,
    ),
    Setting(
        "COMPOSE_PROJECT_NAME",
        "",
        "Compose project and local image name (PROJECT:STAGE); empty means PROJ_NAME plus a hash of the checkout path.",
        kind=kinds.COMPOSE_PROJECT_NAME,
    ),
    project_setting(
        "BASE_IMAGE", "python", "Python base image repository (FROM BASE_IMAGE:PY_VERSION-PY_BASE).", kind=kinds.IMAGE
    ),
    project_setting("PY_VERSION", "3.12", "Python version: the base image's tag prefix."),
    project_setting("PY_BASE", "slim", "Base image variant: the base image's tag suffix."),
    project_setting(
        "DB_IMAGE", "mysql:8.4", "Database image, MySQL-compatible with the official mysql interface.", kind=kinds.IMAGE
    ),
    project_setting("TZ", "UTC", "Time zone of every image."),
    project_setting(
        "ZIP_DIR", "updated_zip", "Folder (in the checkout) that holds the code zip and its manifest.", kind=kinds.PATH
    ),
    project_setting("ZIP_NAME", "Project_playground.zip", "File name of the code zip that stage and prod embed."),
    Setting(
        "EXTRA_CA_DIR",
        "",
        "Folder of *.crt CA certificates to trust in every image that fetches packages.",
        kind=kinds.PATH,
    ),
    Setting("APP_PORT", "8000", "Host port the dev, stage and prod site is published on (127.0.0.1).", kind=kinds.PORT),
    Setting(
        "DEBUG_PORT", "5678", "Host port of debugpy (127.0.0.1) under invoke up --stage dev --debug.", kind=kinds.PORT
    ),
    project_setting(
        "WAIT_TIMEOUT", "180", "Seconds invoke up waits for the containers to turn healthy.", kind=kinds.SECONDS
    ),
    project_setting("DB_HOST", "db", "Swarm stack database: db runs one in the stack; another name is external."),
    Setting("DB_NODE_LABEL", "lifecycle.db", "Swarm node label (LABEL=true) of the node holding the database volume."),
    project_setting(
        "DEPLOY_REPLICAS", "2", "App replicas of invoke deploy when --replicas is not given.", kind=kinds.COUNT
    ),
    project_setting(
        "DEPLOY_TIMEOUT",
        "300",
        "Seconds invoke deploy waits for each step (database, migrate job, update).",
        kind=kinds.SECONDS,
    ),
    Setting(
        "DEPLOY_LOCK_WAIT",
        "0",
        "Seconds a second invoke deploy/rollback waits for the deploy lock (0: refuse).",
        kind=kinds.SECONDS_OR_ZERO,
    ),
    Setting(
        "DEPLOY_LOCK_TIMEOUT",
        "3600",
        "Seconds after which a deploy lock is stale (left by a killed deploy).",
        kind=kinds.SECONDS,
    ),
    project_setting("APP_CPUS", "1", "CPU limit of each app replica in the swarm stack."),
    project_setting("APP_MEMORY", "512M", "Memory limit of each app replica in the swarm stack."),
    # The swarm app's health timing (docker/stack.yaml; docs/deploy.md says how it was sized): a new replica has
    # start period + retries x interval to answer the health path once, or Swarm rolls the release back.
    project_setting(
        "APP_HEALTH_START_PERIOD",
        "24",
        "Seconds a new swarm app replica starts before failed health checks count; widen it for a slow start.",
        kind=kinds.SECONDS,
    ),
    project_setting(
        "APP_HEALTH_INTERVAL", "2", "Seconds between two health checks of a swarm app replica.", kind=kinds.SECONDS
    ),
    project_setting(
        "APP_HEALTH_RETRIES",
        "3",
        "Failed health checks in a row (after the start period) that make a swarm app replica unhealthy.",
        kind=kinds.COUNT,
    ),
    project_setting(
        "APP_UPDATE_MONITOR",
        "10",
        "Seconds Swarm watches an updated app replica for failure; above interval x retries.",
        kind=kinds.SECONDS,
    ),
    project_setting(
        "APP_ROLLBACK_MONITOR",
        "2",
        "Seconds Swarm watches a rolled-back app replica before it reports the rollback completed.",
        kind=kinds.SECONDS,
    ),
    Setting("DEBIAN_MIRROR", "http://deb.debian.org/debian", "Debian mirror for the offline base images."),
    Setting("DEBIAN_SUITE", "trixie", "Debian release of the offline base images."),
    Setting(
        "DEBIAN_SECURITY_MIRROR",
        "http://deb.debian.org/debian-security",
        "Debian security mirror the release gate reads pending security updates from.",
        kind=kinds.TEXT,
    ),
    Setting(
        "BACKUP_DIR", "backups", "Folder (relative to the checkout, or absolute) of database backups.", kind=kinds.PATH
    ),
    project_setting(
        "BACKUP_KEEP",
        "10",
        "Automatic backups kept per project; older ones are pruned (never manual ones).",
        kind=kinds.COUNT,
    ),
    Setting(
        "BACKUP_HOURLY",
        "24",
        "Scheduled backups kept: the newest of each of the last N hours that have one.",
        kind=kinds.COUNT_OR_NONE,
    ),
    Setting(
        "BACKUP_DAILY",
        "7",
        "Scheduled backups kept: the newest of each of the last N days that have one.",
        kind=kinds.COUNT_OR_NONE,
    ),
    Setting(
        "BACKUP_WEEKLY",
        "4",
        "Scheduled backups kept: the newest of each of the last N ISO weeks that have one.",
        kind=kinds.COUNT_OR_NONE,
    ),
    Setting(
        "BACKUP_REMOTE",
        "",
        "Off-machine copies (restic, encrypted): sftp:USER@HOST:/PATH or s3:https://HOST/BUCKET[/PREFIX]; empty: none.",
    ),
    Setting(
        "BACKUP_REMOTE_PASSWORD_FILE",
        "",
        "File holding the restic repository password (BACKUP_REMOTE).",
        kind=kinds.PATH,
    ),
    Setting("BACKUP_REMOTE_SSH_KEY_FILE", "", "SSH private key file for BACKUP_REMOTE (0600).", kind=kinds.PATH),
    Setting(
        "BACKUP_REMOTE_KNOWN_HOSTS_FILE",
        "",
        "known_hosts file with BACKUP_REMOTE's host key (no trust on first use).",
        kind=kinds.PATH,
    ),
    Setting(
        "BACKUP_REMOTE_S3_CREDENTIALS_FILE",
        "",
        "AWS shared-credentials file ([default] aws_access_key_id, aws_secret_access_key) for an s3: BACKUP_REMOTE.",
        kind=kinds.PATH,
    ),
    Setting(
        "BACKUP_REMOTE_CA_FILE",
        "",
        "CA certificate (PEM) that signed an https s3: BACKUP_REMOTE's certificate; empty: Debian's CAs.",
        kind=kinds.PATH,
    ),
    Setting(
        "BACKUP_REMOTE_TIMEOUT",
        "60",
        "Seconds restic may retry its first contact with BACKUP_REMOTE before the command fails in one line.",
        kind=kinds.SECONDS,
    ),
    Setting(
        "DB_SERVER_ID", "1", "Server id of the database's binary log (point-in-time restores).", kind=kinds.SERVER_ID
    ),
    Setting(
        "DB_BINLOG_SECONDS",
        "604800",
        "Seconds the database server keeps its binary logs (copies: BACKUP_DIR/binlogs).",
        kind=kinds.BINLOG_SECONDS,
    ),
    Setting("OFFLINE_PREFIX", "lifecycle", "Repository prefix of the offline base images (PREFIX/python, ...)."),
    Setting(
        "CLUSTER_NAME",
        "lifecycle",
        "Name of the on-machine cluster: prefix of its namespaces and node names.",
        kind=kinds.CLUSTER,
    ),
    Setting(
        "CLUSTER_SUBNET",
        "198.18.7.0/24",
        "Address range of the cluster's bridge; used nowhere on the host.",
        kind=kinds.SUBNET,
    ),
    Setting(
        "CLUSTER_REGISTRY_PORT",
        "5050",
        "Port of the cluster's registry: 127.0.0.1:PORT on the host and every node.",
        kind=kinds.PORT,
    ),
    Setting(
        "CLUSTER_REGISTRY_IMAGE",
        "lifecycle/registry:2.8",
        "Registry image loaded into the manager's engine.",
        kind=kinds.IMAGE,
    ),
    Setting(
        "CLUSTER_DIR",
        "/var/lib/lifecycle-cluster",
        "Folder of the nodes' data roots, sockets and logs.",
        kind=kinds.ABSOLUTE_PATH,
    ),
    project_setting(
        "REGISTRY",
        "",
        "Where releases are pushed (host[:port][/path]); empty: the local registry.",
        kind=kinds.REGISTRY,
    ),
    Setting(
        "REGISTRY_PORT", "5000", "Host port (on 127.0.0.1) of the local registry (invoke registry.up).", kind=kinds.PORT
    ),
    project_setting(
        "REGISTRY_IMAGE",
        "registry:2",
        "Image of the local registry; the offline one when not pullable.",
        kind=kinds.IMAGE,
    ),
    project_setting(
        "PROXY_IMAGE",
        "haproxy:3.0",
        "Image of the TLS proxy in front of prod; the offline one when not pullable.",
        kind=kinds.IMAGE,
    ),
    Setting(
        "SIGNING_PUBLIC_KEY",
        "signing/cosign.pub",
        "Public key deploys verify releases with (committed).",
        kind=kinds.PATH,
    ),
    Setting(
        "SIGNING_PRIVATE_KEY",
        ".lifecycle/signing/cosign.private",
        "Private key invoke release signs with (0600).",
        kind=kinds.PATH,
    ),
    Setting(
        "SIGNING_PASSPHRASE_FILE",
        ".lifecycle/signing/passphrase",
        "File holding the private key's passphrase.",
        kind=kinds.PATH,
    ),
    Setting(
        "RELEASE_ALLOW",
        "",
        "Reason to release past the vulnerability gate (as --allow); recorded per release.",
        kind=kinds.TEXT,
    ),
    Setting(
        "ALLOW_UNSIGNED",
        "false",
        "true: deploy unsigned images too (a transition; warned on every deploy).",
        kind=kinds.BOOLEAN,
    ),
    Setting("HTTPS_PORT", "8443", "Host port (on 127.0.0.1) where the proxy serves prod over HTTPS.", kind=kinds.PORT),
    Setting(
        "TLS_CERT_FILE",
        "",
        "PEM certificate (chain) the proxy serves; empty: the one in .lifecycle/tls/.",
        kind=kinds.PATH,
    ),
    Setting(
        "TLS_KEY_FILE", "", "PEM private key of TLS_CERT_FILE; empty: the one in .lifecycle/tls/.", kind=kinds.PATH
    ),
    Setting(
        "MAINTENANCE_ALLOW",
        "",
        "Client addresses or networks (comma-separated) that reach the app in maintenance.",
        kind=kinds.NETWORKS,
    ),
    project_setting(
        "MAINTENANCE_PAGE",
        "",
        "HTML page of maintenance mode (in the checkout); empty: templates/503.html or a plain one.",
        kind=kinds.PATH,
    ),
    # The adopted project: what `invoke adopt` detects and writes into [tool.lifecycle]; the defaults are this
    # repository's own site, django_site, the project it adopts by default.
    project_setting(
        "PROJECT_DIR", ".", "Folder (in the checkout) that holds manage.py.", kind=kinds.FOLDER_IN_CHECKOUT
    ),
    project_setting("CODE", "manage.py django_site", "Paths (in PROJECT_DIR) the code zip carries.", " "),
    project_setting(
        "TESTS",
        "",
        "Paths (in PROJECT_DIR) test-qa adds to the code: tests and pytest config outside CODE.",
        " ",
    ),
    project_setting(
        "SETTINGS_DEV", "django_site.settings", "The project's settings module in dev.", kind=kinds.PYTHON_MODULE
    ),
    project_setting(
        "SETTINGS_TEST", "", "The project's settings module in test-qa; empty: SETTINGS_DEV.", kind=kinds.PYTHON_MODULE
    ),
    project_setting(
        "SETTINGS_PROD",
        "django_site.settings",
        "The project's settings module in stage and prod.",
        kind=kinds.PYTHON_MODULE,
    ),
    project_setting(
        "WSGI_APP",
        "django_site.wsgi:application",
        "The project's WSGI application (module:name).",
        kind=kinds.WSGI_REFERENCE,
    ),
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
    project_setting(
        "HEALTH_PATH", "/health", "Path of the health check (the suite's, or the project's own).", kind=kinds.URL_PATH
    ),
    project_setting(
        "TEST_RUNNER",
        "pytest",
        "How test-qa runs the project's tests: pytest or django.",
        kind=kinds.enum(*TEST_RUNNERS),
    ),
    project_setting(
        "TEST_ARGS",
        "",
        "Arguments test-qa gives the runner when qa is given none: test labels, options (e.g. an installed app's).",
        " ",
    ),
    project_setting(
        "MEDIA",
        "false",
        "true: user uploads on their own volume (MEDIA_ROOT), carried by db.backup/db.restore; adopt detects it.",
        kind=kinds.BOOLEAN,
    ),
    *(
        project_setting(f"LAYER_{part}", "true", f"Settings layer: {meaning}", kind=kinds.BOOLEAN)
        for part, meaning in LAYER_HELP.items()
    ),
)
DEFAULTS = {s.name: s.default for s in TABLE}
BY_NAME = {s.name: s for s in TABLE}
