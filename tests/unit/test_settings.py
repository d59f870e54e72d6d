"""lifecycle.settings: precedence, the strict env-file parser, validation, the per-checkout project name."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lifecycle.errors import UserError
from lifecycle.settings import IMAGES_ENV, USER_ENV, load_settings, parse_env_file
from lifecycle.settings_table import DEFAULTS, TABLE
from lifecycle.stages import PROD

CHECKOUT = Path(__file__).resolve().parents[2]


def write(root: Path, relative: Path, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("images_env", "user_env", "environ", "expected"),
    [
        pytest.param(None, None, None, "3.12", id="nothing set gives the table default"),
        pytest.param("3.13", None, None, "3.13", id="images.env overrides the default"),
        pytest.param(None, "3.11", None, "3.11", id=".env overrides the default"),
        pytest.param("3.13", "3.11", None, "3.11", id=".env overrides images.env"),
        pytest.param(None, None, "3.10", "3.10", id="the environment overrides the default"),
        pytest.param("3.13", None, "3.10", "3.10", id="the environment overrides images.env"),
        pytest.param(None, "3.11", "3.10", "3.10", id="the environment overrides .env"),
        pytest.param("3.13", "3.11", "3.10", "3.10", id="the environment overrides both files"),
    ],
)
def test_precedence(tmp_path, images_env, user_env, environ, expected):
    if images_env is not None:
        write(tmp_path, IMAGES_ENV, f"PY_VERSION={images_env}\n")
    if user_env is not None:
        write(tmp_path, USER_ENV, f"PY_VERSION={user_env}\n")
    settings = load_settings(root=tmp_path, environ={} if environ is None else {"PY_VERSION": environ})
    assert settings["PY_VERSION"] == expected
    assert settings.env["PY_VERSION"] == expected


def test_nothing_set_gives_every_table_default(tmp_path):
    assert dict(load_settings(root=tmp_path, environ={}).values) == DEFAULTS


def test_files_only_change_the_keys_they_name(tmp_path):
    write(tmp_path, IMAGES_ENV, "BASE_IMAGE=lifecycle/python\nPY_BASE=trixie\n")
    write(tmp_path, USER_ENV, "PY_BASE=bookworm\n")
    settings = load_settings(root=tmp_path, environ={"TZ": "Europe/Paris"})
    assert settings.base_image == "lifecycle/python:3.12-bookworm"
    assert settings["TZ"] == "Europe/Paris"
    assert settings["DB_IMAGE"] == DEFAULTS["DB_IMAGE"]


def test_non_table_keys_from_files_and_environment_reach_the_docker_env(tmp_path):
    write(tmp_path, USER_ENV, "DJANGO_SECRET_KEY=from-file\nDB_PASSWORD=file-pw\n")
    settings = load_settings(root=tmp_path, environ={"DB_PASSWORD": "env-pw"})
    assert settings.env["DJANGO_SECRET_KEY"] == "from-file"
    assert settings.env["DB_PASSWORD"] == "env-pw"
    assert "DJANGO_SECRET_KEY" not in settings.values


@pytest.mark.parametrize(
    ("images_env", "user_env", "environ", "expected"),
    [
        pytest.param(None, None, "", "3.12", id="an empty environment value means the default"),
        pytest.param(None, "", None, "3.12", id="an empty .env value means the default"),
        pytest.param("3.13", "", None, "3.12", id="an empty .env value hides images.env and means the default"),
        pytest.param("3.13", "3.11", "", "3.12", id="an empty environment value hides both files"),
    ],
)
def test_an_empty_value_means_the_default_as_for_compose(tmp_path, images_env, user_env, environ, expected):
    """Compose lets a set-but-empty variable win and then applies ${PY_VERSION:-3.12}'s default; so does the suite."""
    test_precedence(tmp_path, images_env, user_env, environ, expected)


def test_an_empty_value_gives_the_default_base_image(tmp_path):
    assert load_settings(root=tmp_path, environ={"PY_VERSION": "", "PY_BASE": ""}).base_image == "python:3.12-slim"


# ------------------------------------------------------------------------------------------ env-file parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", {}, id="an empty file gives nothing"),
        pytest.param("# a comment\n\n   \n  # indented comment\n", {}, id="comments and blank lines are skipped"),
        pytest.param("A=1\nB=two words\n", {"A": "1", "B": "two words"}, id="plain KEY=VALUE lines"),
        pytest.param("export A=1\n", {"A": "1"}, id="an export prefix is allowed"),
        pytest.param('A="quoted value"\n', {"A": "quoted value"}, id="double quotes are removed"),
        pytest.param("A='single'\n", {"A": "single"}, id="single quotes are removed"),
        pytest.param('A=""\n', {"A": ""}, id="empty quotes give an empty value"),
        pytest.param("A=x=y\n", {"A": "x=y"}, id="only the first equals sign splits"),
        pytest.param("A=1\nA=2\n", {"A": "2"}, id="a later line wins"),
        pytest.param("  A=1  \r\n", {"A": "1"}, id="surrounding whitespace and CRLF are stripped"),
        pytest.param("_A9=ok\n", {"_A9": "ok"}, id="underscores and digits in names"),
        # What `docker compose` does with the same file (compose-go's dotenv, checked against compose 2.40):
        pytest.param("A=WARNING  # quieter logs\n", {"A": "WARNING"}, id="a comment after ' #' is not the value"),
        pytest.param("A=abc#x\n", {"A": "abc#x"}, id="a # inside a word is part of the value"),
        pytest.param("A=#x\n", {"A": "#x"}, id="a value may start with #"),
        pytest.param("A = 1\n", {"A": "1"}, id="spaces around the equals sign"),
        pytest.param('A="x # y" # c\n', {"A": "x # y"}, id="a comment after a double-quoted value"),
        pytest.param("A='x' # c\n", {"A": "x"}, id="a comment after a single-quoted value"),
        pytest.param('A="a\\"b\\nc"\n', {"A": 'a"b\nc'}, id="escapes in double quotes"),
        pytest.param("A=1\nB=${A}2\nC=$A-${NOPE:-d}\n", {"A": "1", "B": "12", "C": "1-d"}, id="references expand"),
        pytest.param("A=1\nB='${A}'\n", {"A": "1", "B": "${A}"}, id="single quotes keep references"),
    ],
)
def test_parse_env_file_accepts(text, expected):
    assert parse_env_file(text, ".env") == expected


def test_references_see_the_environment_first():
    assert parse_env_file("B=${A}x\n", ".env", {"A": "env"}) == {"B": "envx"}


def test_an_inline_comment_in_env_file_never_reaches_the_settings(tmp_path):
    write(tmp_path, USER_ENV, "APP_PORT=8123   # my port\nDJANGO_LOG_LEVEL=WARNING  # quieter logs\n")
    settings = load_settings(root=tmp_path, environ={})
    assert (settings["APP_PORT"], settings.env["DJANGO_LOG_LEVEL"]) == ("8123", "WARNING")


def test_parse_env_file_accepts_an_empty_value():
    assert parse_env_file("EXTRA_CA_DIR=\nexport B=\n", ".env") == {"EXTRA_CA_DIR": "", "B": ""}


def test_an_empty_value_in_env_file_loads(tmp_path):
    write(tmp_path, USER_ENV, "EXTRA_CA_DIR=\nAPP_PORT=\n")
    settings = load_settings(root=tmp_path, environ={})
    assert (settings["EXTRA_CA_DIR"], settings["APP_PORT"]) == ("", "8000")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("just words\n", ".env line 1: expected KEY=VALUE", id="a line without ="),
        pytest.param("A=1\n\n# c\nA B=2\n", ".env line 4: expected KEY=VALUE", id="line numbers count every line"),
        pytest.param("1A=x\n", ".env line 1: expected KEY=VALUE", id="a name starting with a digit"),
        pytest.param("=x\n", ".env line 1: expected KEY=VALUE", id="a missing name"),
        pytest.param('A="open\n', ".env line 1: unterminated quote in A; close the quote", id="an unclosed quote"),
        pytest.param("A='mixed\"\n", ".env line 1: unterminated quote in A", id="mismatched quotes"),
        pytest.param('B=1\nA="\n', ".env line 2: unterminated quote in A", id="a lone quote character"),
        pytest.param('A="x"y\n', ".env line 1: text after the closing quote of A", id="text after a quote"),
        pytest.param("A=1\nB=x\0y\n", ".env line 2: B holds a NUL byte", id="a NUL byte in a value"),
        pytest.param("A='x\0'\n", ".env line 1: A holds a NUL byte", id="a NUL byte in quotes"),
        pytest.param("A\0=x\n", ".env line 1: expected KEY=VALUE", id="a NUL byte in a name"),
    ],
)
def test_parse_env_file_rejects(text, message):
    with pytest.raises(UserError) as error:
        parse_env_file(text, ".env")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_bad_line_in_a_file_names_that_file(tmp_path):
    write(tmp_path, IMAGES_ENV, "BASE_IMAGE=ok\nnot a setting\n")
    with pytest.raises(UserError, match=r"^\.lifecycle/images\.env line 2: expected KEY=VALUE"):
        load_settings(root=tmp_path, environ={})


SECRET = "Zq7-xK9w-Pv2j"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"{SECRET}\n", id="a value pasted on its own line"),
        pytest.param(f"DB PASSWORD={SECRET}\n", id="a space in the name"),
        pytest.param(f'DB_PASSWORD="{SECRET}\n', id="an unclosed quote"),
        pytest.param(f'DB_PASSWORD="{SECRET[:7]}"{SECRET[7:]}\n', id="text after the quote"),
        pytest.param(f"DB_PASSWORD={SECRET}\0\n", id="a NUL byte"),
        pytest.param(f"{SECRET}" * 30 + "\n", id="a long line"),
    ],
)
def test_an_error_names_the_line_and_variable_never_the_value(text):
    """Errors end up in CI logs: they name the line number (and the variable), no part of the value."""
    with pytest.raises(UserError) as error:
        parse_env_file(f"A=1\n{text}", ".env")
    message = str(error.value)
    assert message.startswith(".env line 2: ")
    assert not any(SECRET[i : i + 4] in message for i in range(len(SECRET) - 3)), message


@pytest.mark.parametrize(
    "separator",
    ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"],
    ids=["VT", "FF", "FS", "GS", "RS", "NEL", "LINE SEPARATOR", "PARAGRAPH SEPARATOR"],
)
def test_only_newline_ends_a_line_as_for_compose(separator):
    """str.splitlines() also splits at these, so the suite read two settings where compose reads one value."""
    assert parse_env_file(f"A=1{separator}B=2\r\nC=3", ".env") == {"A": f"1{separator}B=2", "C": "3"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("A=x" + " " * 2**20 + "y\n", "x" + " " * 2**20 + "y", id="1 MiB of spaces in a value"),
        pytest.param("A=x" + " " * 2**20 + "#c\n", "x", id="1 MiB of spaces before a comment"),
        pytest.param("A=" + "${B:-" * 2**18 + "\n", "${B:-" * 2**18, id="a quarter million unclosed references"),
        pytest.param("A=" + "${B:-$B" * 2**17 + "\n", "${B:-x" * 2**17, id="unclosed references between bare ones"),
    ],
)
def test_a_long_line_parses_in_linear_time(text, expected):
    """No pattern backtracks over the line: the quadratic ones took 10.7 s for 64 KiB and would take hours here."""
    assert parse_env_file(text, ".env", {"B": "x"}) == {"A": expected}


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("export" + " " * 2**20 + "x", id="export and 1 MiB of spaces, no ="),
        pytest.param("A" + "." * 2**20 + " " * 2**20 + "x", id="a long name then spaces, no ="),
        pytest.param('A="' + "\\" * 2**20, id="an unclosed quote of backslashes"),
        pytest.param('A="x"' + " " * 2**20 + "y", id="1 MiB of spaces after a quote"),
    ],
)
def test_a_long_bad_line_is_refused_in_linear_time(line):
    with pytest.raises(UserError, match=r"^\.env line 1: "):
        parse_env_file(line + "\n", ".env")


def test_an_env_file_that_is_not_utf8_is_named_in_one_line(tmp_path):
    (tmp_path / ".env").write_bytes(b"A=1\nB=\xff\n")
    with pytest.raises(UserError, match=r"^\.env is not UTF-8 text \(byte 6\); save it as UTF-8$"):
        load_settings(root=tmp_path, environ={})


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "port",
    [
        pytest.param("1", id="port 1 is the lowest allowed"),
        pytest.param("8000", id="the default port"),
        pytest.param("65535", id="port 65535 is the highest allowed"),
    ],
)
def test_app_port_accepts(tmp_path, port):
    assert load_settings(root=tmp_path, environ={"APP_PORT": port})["APP_PORT"] == port


@pytest.mark.parametrize(
    "port",
    [
        pytest.param("0", id="port 0 is refused"),
        pytest.param("65536", id="port 65536 is refused"),
        pytest.param("http", id="a word is refused"),
        pytest.param("-1", id="a negative number is refused"),
        pytest.param("80.5", id="a decimal is refused"),
    ],
)
def test_app_port_rejects(tmp_path, port):
    with pytest.raises(UserError) as error:
        load_settings(root=tmp_path, environ={"APP_PORT": port})
    assert str(error.value) == (
        f"APP_PORT={port!r} is not a port number; set it to a number from 1 to 65535 (from the environment)"
    )


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param("0", id="zero seconds is refused"),
        pytest.param("3m", id="a unit is refused"),
        pytest.param("-5", id="a negative number is refused"),
    ],
)
def test_wait_timeout_rejects(tmp_path, seconds):
    with pytest.raises(UserError) as error:
        load_settings(root=tmp_path, environ={"WAIT_TIMEOUT": seconds})
    assert str(error.value) == (
        f"WAIT_TIMEOUT={seconds!r} is not a number of seconds; set it to a whole number above 0 (from the environment)"
    )


def test_a_flag_is_checked_like_a_setting(tmp_path):
    settings = load_settings(root=tmp_path, environ={})
    assert settings.override(WAIT_TIMEOUT=30)["WAIT_TIMEOUT"] == "30"
    with pytest.raises(UserError, match=r"^WAIT_TIMEOUT='soon' is not a number of seconds"):
        settings.override(WAIT_TIMEOUT="soon")


def test_a_bad_app_port_in_env_file_is_refused_too(tmp_path):
    write(tmp_path, USER_ENV, "APP_PORT=eighty\n")
    with pytest.raises(UserError, match=r"^APP_PORT='eighty' is not a port number"):
        load_settings(root=tmp_path, environ={})


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("project", id="the default name"),
        pytest.param("my-app_2", id="dashes underscores and digits"),
        pytest.param("9lives", id="a leading digit"),
    ],
)
def test_proj_name_accepts(tmp_path, name):
    assert load_settings(root=tmp_path, environ={"PROJ_NAME": name})["PROJ_NAME"] == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("MyApp", id="uppercase letters are refused"),
        pytest.param("-app", id="a leading dash is refused"),
        pytest.param("my app", id="a space is refused"),
        pytest.param("app/web", id="a slash is refused"),
        pytest.param("app-", id="a trailing dash is refused (the engine refuses such an image name)"),
        pytest.param("a___b", id="three underscores are refused"),
    ],
)
def test_proj_name_rejects(tmp_path, name):
    """PROJ_NAME is refused with the rule it breaks."""
    with pytest.raises(UserError) as error:
        load_settings(root=tmp_path, environ={"PROJ_NAME": name})
    assert str(error.value) == (
        f"PROJ_NAME={name!r} is not a valid image name; use lowercase letters and digits, joined by '-', '_' or '.' "
        "(from the environment)"
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("project", id="the default name"),
        pytest.param("my.app", id="a dot becomes a dash"),
        pytest.param("a.b_c--d", id="dots underscores and dashes"),
    ],
)
def test_a_valid_proj_name_gives_a_valid_compose_project_name(tmp_path, name):
    """Compose project names allow only [a-z0-9_-]; image names also allow '.'."""
    settings = load_settings(root=tmp_path, environ={"PROJ_NAME": name})
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", settings.project_name)
    assert settings.project_name.startswith(name.replace(".", "-") + "-")
    assert settings.image(PROD) == f"{settings.project_name}:prod"
    assert re.fullmatch(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", settings.project_name)  # an image name too


# -------------------------------------------------------------------------------------------- project name


def test_project_name_is_proj_name_and_a_hash_of_the_checkout(tmp_path):
    name = load_settings(root=tmp_path, environ={"PROJ_NAME": "shop"}).project_name
    assert re.fullmatch(r"shop-[0-9a-f]{8}", name)


def test_two_checkouts_get_different_project_names(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = load_settings(root=tmp_path / "one", environ={}).project_name
    two = load_settings(root=tmp_path / "two", environ={}).project_name
    assert one != two


def test_one_checkout_always_gets_the_same_project_name(tmp_path):
    (tmp_path / "a").mkdir()
    first = load_settings(root=tmp_path / "a", environ={}).project_name
    again = load_settings(root=tmp_path / "a" / ".." / "a", environ={}).project_name
    assert first == again


def test_compose_project_name_overrides_the_hash(tmp_path):
    settings = load_settings(root=tmp_path, environ={"COMPOSE_PROJECT_NAME": "ci-job-7"})
    assert settings.project_name == "ci-job-7"


# ------------------------------------------------------------------------------------ derived values, override


def test_derived_names(tmp_path):
    settings = load_settings(root=tmp_path, environ={"PROJ_NAME": "shop", "ZIP_DIR": "out", "ZIP_NAME": "c.zip"})
    assert re.fullmatch(r"shop-[0-9a-f]{8}:prod", settings.image(PROD))  # the checkout's own name
    assert settings.sbom_image(PROD) == f"{settings.project_name}:sbom-runtime"
    assert settings.release_repository == "127.0.0.1:5000/shop"  # shared by every checkout of shop
    assert settings.zip_path == tmp_path / "out" / "c.zip"
    assert settings.base_image == "python:3.12-slim"


def test_override_ignores_none_and_applies_the_rest(tmp_path):
    settings = load_settings(root=tmp_path, environ={})
    changed = settings.override(PY_VERSION="3.13", TZ=None)
    assert changed["PY_VERSION"] == "3.13"
    assert changed.env["PY_VERSION"] == "3.13"
    assert changed["TZ"] == "UTC"
    assert changed.env["TZ"] == "UTC"
    assert settings["PY_VERSION"] == "3.12"  # the original is unchanged


def test_override_with_only_none_changes_nothing(tmp_path):
    settings = load_settings(root=tmp_path, environ={})
    same = settings.override(PY_VERSION=None, APP_PORT=None)
    assert same.values == settings.values
    assert same.env == settings.env


def test_override_stringifies_values(tmp_path):
    assert load_settings(root=tmp_path, environ={}).override(APP_PORT=9000)["APP_PORT"] == "9000"


# --------------------------------------------------------------------------------------------- docker env


def test_docker_env_has_host_ids(tmp_path):
    env = load_settings(root=tmp_path, environ={}).env
    assert env["HOST_UID"] == str(os.getuid())
    assert env["HOST_GID"] == str(os.getgid())


@pytest.mark.parametrize("value", ["false", "true"])
def test_compose_bake_is_left_to_compose_whatever_the_files_and_environment_say(tmp_path, value):
    """COMPOSE_BAKE=false is deprecated (a warning per build); unset, compose picks what this engine supports."""
    write(tmp_path, USER_ENV, f"COMPOSE_BAKE={value}\n")
    assert "COMPOSE_BAKE" not in load_settings(root=tmp_path, environ={"COMPOSE_BAKE": value}).env


def test_environment_host_ids_win_over_the_process_ids(tmp_path):
    env = load_settings(root=tmp_path, environ={"HOST_UID": "4242", "HOST_GID": "4343"}).env
    assert (env["HOST_UID"], env["HOST_GID"]) == ("4242", "4343")


def test_docker_env_holds_every_setting(tmp_path):
    env = load_settings(root=tmp_path, environ={}).env
    assert {name: env[name] for name in DEFAULTS} == DEFAULTS


# ------------------------------------------------------------------------------- compose.yaml stays in sync

# Innermost references only: ${TEST_QA_IMAGE:-${PROJ_NAME:-project}:test-qa} yields PROJ_NAME's default.
COMPOSE_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}$]*)\}")
COMPOSE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}$]*)\}")


def compose_text() -> str:
    return (CHECKOUT / "docker" / "compose.yaml").read_text(encoding="utf-8")


# Empty in the table because the suite derives them (an absolute path); compose names the same file relative to it.
DERIVED = {"TLS_CERT_FILE", "TLS_KEY_FILE"}


def test_compose_yaml_defaults_match_the_settings_table():
    found = [(name, default) for name, default in COMPOSE_DEFAULT.findall(compose_text())
             if name in DEFAULTS and name not in DERIVED]  # fmt: skip
    # The file interpolates at least these tunables; an empty list would make the comparison below vacuous.
    assert {"PROJ_NAME", "BASE_IMAGE", "PY_VERSION", "PY_BASE", "DB_IMAGE", "APP_PORT"} <= {n for n, _ in found}
    mismatched = [f"${{{name}:-{default}}} (table: {DEFAULTS[name]!r})" for name, default in found
                  if default != DEFAULTS[name]]  # fmt: skip
    assert mismatched == []


# Compose sets it to the project's name (--project-name, or the folder's) in every run, so it is never unset.
SET_BY_COMPOSE = {"COMPOSE_PROJECT_NAME"}


def test_compose_yaml_gives_every_table_setting_a_default():
    """A bare ${VAR} would make plain `docker compose` differ from the suite when VAR is unset."""
    bare = [f"${{{name}{rest}}}" for name, rest in COMPOSE_REFERENCE.findall(compose_text())
            if name in DEFAULTS and name not in SET_BY_COMPOSE and not rest.startswith(":-")]  # fmt: skip
    assert bare == []


DOCKERFILE_ARG = re.compile(r'^ARG ([A-Za-z_][A-Za-z0-9_]*)=("[^"\n]*"|\S*)$', re.MULTILINE)
COMPOSE_BUILD_ARG = re.compile(r"^    ([A-Z_][A-Z0-9_]*): \$\{\1:-([^}$]*)\}$", re.MULTILINE)


def dockerfile_defaults() -> dict[str, str]:
    paths = [CHECKOUT / "docker" / "Dockerfile", *sorted((CHECKOUT / "docker" / "offline").glob("*.Dockerfile"))]
    found = (match for path in paths for match in DOCKERFILE_ARG.findall(path.read_text()))
    return {name: value.strip('"') for name, value in found}  # a quoted default holds spaces (a list)


def test_dockerfile_arg_defaults_match_the_settings_table():
    """A plain `docker build` (no compose, no suite) must build what the defaults describe."""
    found = {name: default for name, default in dockerfile_defaults().items() if name in DEFAULTS}
    assert {"BASE_IMAGE", "PY_VERSION", "PY_BASE", "TZ", "ZIP_DIR", "ZIP_NAME", "PROJ_NAME"} <= set(found)
    assert {name: default for name, default in found.items() if default != DEFAULTS[name]} == {}


def test_compose_build_args_default_to_the_dockerfile_arg_defaults():
    """Every build argument compose passes falls back to the same value the Dockerfile's ARG has."""
    build_args = dict(COMPOSE_BUILD_ARG.findall(compose_text()))
    assert {"ZIP_NAME", "ZIP_SHA256", "VERSION"} <= set(build_args)
    arg_defaults = dockerfile_defaults()
    assert {name: value for name, value in build_args.items() if arg_defaults.get(name) != value} == {}


def test_table_names_are_unique_and_documented():
    names = [s.name for s in TABLE]
    assert len(names) == len(set(names))
    assert all(s.help.strip() for s in TABLE)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("My-Project", id="an uppercase compose project name is refused"),
        pytest.param("my.project", id="a dot in the compose project name is refused"),
        pytest.param("my-project_", id="a trailing underscore is refused (not an image name)"),
    ],
)
def test_compose_project_name_rejects(tmp_path, name):
    with pytest.raises(UserError) as error:
        load_settings(root=tmp_path, environ={"COMPOSE_PROJECT_NAME": name})
    assert str(error.value).startswith(f"COMPOSE_PROJECT_NAME={name!r} is not a valid compose project and image name;")
