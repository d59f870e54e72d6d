"""The settings: the one table (lifecycle/settings_table.py) layered, read, checked and overridden.

Precedence, lowest first: the table's defaults; the project's committed `[tool.lifecycle]` table in its
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.envfile import parse_env_file
from lifecycle.errors import UserError
from lifecycle.jobs import jobs_variable
from lifecycle.layout import find_root, suite_code
from lifecycle.settings_table import BY_NAME, DEFAULTS, TABLE, Setting
from lifecycle.stages import Stage

ROOT = find_root()
IMAGES_ENV = Path(".lifecycle") / "images.env"
ENGINE_CACHE = Path(".lifecycle") / "engine.json"  # the preflight's answers (probes.engine_fingerprint)
USER_ENV = Path(".env")
PYPROJECT = Path("pyproject.toml")
LIFECYCLE_TABLE = "[tool.lifecycle]"
ENVIRONMENT = "the environment"
TASK_OPTION = "a task option"


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


OWN_TABLES = ("jobs",)  # [[tool.lifecycle.jobs]]: read by lifecycle/jobs.py, not settings


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
    table = {key: value for key, value in table.items() if key not in OWN_TABLES}
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
    origins: Mapping[str, str] = field(default_factory=dict)  # name -> the layer its value came from (not: default)

    def __getitem__(self, name: str) -> str:
        """The value as text: what compose interpolates, and what a message shows."""
        return self.values[name]

    def typed(self, name: str) -> Any:
        """The value as its row's kind reads it (int for a port, seconds or count, bool, Path, tuple for a list);
        checked at load, so this never refuses."""
        return BY_NAME[name].convert(self.values[name])

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
        return self.typed("CODE")

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

    def override(self, flags: Mapping[str, str] | None = None, **changes: str | int | None) -> Settings:
        """A copy with a task's options applied (None means the option was not given), checked like the rest: a bad
        value is named by its option (`flags`: setting -> `--option`), else as coming from a task option."""
        given = {k: str(v) for k, v in changes.items() if v is not None}
        values = {**self.values, **given}
        origins = {**self.origins, **{name: (flags or {}).get(name, TASK_OPTION) for name in given}}
        validate(values, origins)
        return Settings(self.root, values, {**self.env, **given}, origins)


def load_settings(root: Path = ROOT, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of the checkout at `root`, every value checked once here (all bad ones reported, one line each,
    naming the layer each came from)."""
    environ = os.environ if environ is None else environ
    project = read_project_table(root)
    images, user = read_env_file(root, IMAGES_ENV, environ), read_env_file(root, USER_ENV, environ)
    files = {**images, **user}
    layers = ((f"{PYPROJECT} {LIFECYCLE_TABLE}", project), (str(IMAGES_ENV), images), (str(USER_ENV), user),
              (ENVIRONMENT, environ))  # fmt: skip
    # An empty value means the default, as it does for compose's ${VAR:-default}.
    origins = {name: layer for layer, given in layers for name in DEFAULTS if given.get(name)}
    merged = {**project, **files, **environ}
    values = {name: merged.get(name) or default for name, default in DEFAULTS.items()}
    validate(values, origins)
    # HOST_UID/GID: dev and test-qa run as the host user, so files they write on the host are theirs.
    host = {"HOST_UID": str(os.getuid()), "HOST_GID": str(os.getgid())}
    # SUITE_CODE: where the build context holds the suite's code the images carry (lifecycle/layout.py).
    env = {**host, "SUITE_CODE": suite_code(root), **project, **files, **environ, **values}
    env["JOBS"] = jobs_variable(root)  # [[tool.lifecycle.jobs]] for the scheduler services (docs/operating.md)
    # COMPOSE_BAKE=false is deprecated (a warning on every build): unset, compose builds with bake where buildx is
    # installed and with its own BuildKit client otherwise (compose.build silences that fallback's warning).
    env.pop("COMPOSE_BAKE", None)
    return Settings(root, values, env, origins)


def problems(values: Mapping[str, str], origins: Mapping[str, str] | None = None) -> list[str]:
    """One line per value its row refuses: `NAME='value' what is wrong; what to do (from LAYER)`, or for a task
    option `--option 'value' ... (NAME)`."""
    lines = []
    for setting in TABLE:
        text = values[setting.name]
        try:
            setting.convert(text)
        except ValueError as error:
            layer = (origins or {}).get(setting.name, "")
            if layer.startswith("--"):
                lines.append(f"{layer} {text!r} {error} ({setting.name})")
            else:
                lines.append(f"{setting.name}={text!r} {error}" + (f" (from {layer})" if layer else ""))
    return lines


def validate(values: Mapping[str, str], origins: Mapping[str, str] | None = None) -> None:
    """Every value checked by its row's kind; all the bad ones in one error, a line each."""
    found = problems(values, origins)
    if found:
        raise UserError("\n".join(found))
