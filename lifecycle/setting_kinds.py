"""What a setting's value may be: one `Kind` per row of the settings table (lifecycle/settings_table.py).

A kind turns the text of a value (what `.env`, the environment or a flag gave, and what compose interpolates) into
the typed value the code uses (`Settings.typed`), or refuses it with why and what to do. The settings module adds
the setting's name and the layer the value came from, and reports every bad value at load, one line each.
Standard library only: the engine bootstrap reads settings before any virtual environment exists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BOOLEAN_TRUE = ("true", "1", "yes", "on")
BOOLEAN_WORDS = (*BOOLEAN_TRUE, "false", "0", "no", "off")

# One component of an image repository, as the engine accepts it (`a-b`, `a.b`, `a_b`, `a__b`; no separator at an end).
IMAGE_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# host[:port][/path], lowercase as image references must be: registry.example.com/team, 127.0.0.1:5000
REGISTRY_FORMAT = re.compile(r"[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
# An image reference as the engine reads it: [HOST[:PORT]/]NAME[/NAME...][:TAG][@DIGEST].
_DOMAIN = r"(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}(?::[0-9]+)?/|[A-Za-z0-9-]+:[0-9]+/)?{IMAGE_NAME.pattern}(?:/{IMAGE_NAME.pattern})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
COMPOSE_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]*")
MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
CLUSTER_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")


@dataclass(frozen=True)
class Kind:
    """`name` is what the settings reference shows; `convert` gives the typed value of a non-empty text or raises
    ValueError with the words after `NAME='value'`: what is wrong; what to do (`{default}` is the row's default)."""

    name: str
    convert: Callable[[str], object]
    empty: object = ""  # the typed value of an empty text (where the row's default is empty)


def _refuse(words: str) -> ValueError:
    return ValueError(words)


def _whole(lowest: int, highest: int | None, words: str) -> Callable[[str], int]:
    def convert(text: str) -> int:
        if not text.isdigit() or int(text) < lowest or (highest is not None and int(text) > highest):
            raise _refuse(words)
        return int(text)

    return convert


def _boolean(text: str) -> bool:
    if text.lower() not in BOOLEAN_WORDS:
        raise _refuse("is not a boolean; set it to true or false")
    return text.lower() in BOOLEAN_TRUE


def _matching(pattern: re.Pattern[str], words: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if not pattern.fullmatch(text):
            raise _refuse(words)
        return text

    return convert


def _compose_project(text: str) -> str:
    if not (COMPOSE_PROJECT.fullmatch(text) and IMAGE_NAME.fullmatch(text)):
        raise _refuse(
            "is not a valid compose project and image name; use lowercase letters and digits, joined by '-' or '_', "
            "or leave it empty"
        )
    return text


def _wsgi(text: str) -> str:
    module, _, attribute = text.partition(":")
    if not (MODULE.fullmatch(module) and attribute.isidentifier()):
        raise _refuse("is not MODULE:NAME; e.g. mysite.wsgi:application")
    return text


def _url_path(text: str) -> str:
    if not text.startswith("/") or text == "/":
        raise _refuse("must be a path below the root; e.g. /health")
    return text


def _inside_checkout(text: str) -> Path:
    folder = Path(text)
    if folder.is_absolute() or ".." in folder.parts:
        raise _refuse("must be a folder inside the checkout; e.g. . or src")
    return folder


def _absolute(text: str) -> Path:
    folder = Path(text)
    if not folder.is_absolute():
        raise _refuse("must be an absolute path, e.g. /var/lib/lifecycle-cluster")
    return folder


def _subnet(text: str) -> ipaddress.IPv4Network:
    try:
        subnet = ipaddress.IPv4Network(text)
    except ValueError:
        raise _refuse("is not an IPv4 network; use e.g. 198.18.7.0/24") from None
    if subnet.num_addresses < 16:
        raise _refuse("is too small; use a /28 or larger, e.g. 198.18.7.0/24")
    return subnet


def _networks(text: str) -> tuple[str, ...]:
    found = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise _refuse(f"has {item!r}, not an address or network; e.g. 203.0.113.7,10.0.0.0/8") from None
    return tuple(found)


def enum(*choices: str) -> Kind:
    def convert(text: str) -> str:
        if text not in choices:
            raise _refuse(f"is not valid; set it to one of: {', '.join(choices)}")
        return text

    return Kind(f"one of {', '.join(choices)}", convert)


def listing(separator: str) -> Kind:
    """Items joined by `separator` (" ": any whitespace); the typed value is the tuple of non-empty items."""
    if separator == " ":
        return Kind("list (space-separated)", lambda text: tuple(text.split()), ())
    return Kind(
        f"list ({separator!r}-separated)",
        lambda text: tuple(item.strip() for item in text.split(separator) if item.strip()),
        (),
    )


TEXT = Kind("text", str)
PORT = Kind("port", _whole(1, 65535, "is not a port number; set it to a number from 1 to 65535"))
SECONDS = Kind("seconds", _whole(1, None, "is not a number of seconds; set it to a whole number above 0"))
SECONDS_OR_ZERO = Kind("seconds (0: none)", _whole(0, None, "is not a whole number of seconds; e.g. 600 (0: none)"))
COUNT = Kind("count", _whole(1, None, "is not a count of at least 1; set it to e.g. {default}"))
COUNT_OR_NONE = Kind(
    "count (0: none)", _whole(0, None, "is not a count; set it to a whole number, e.g. {default} (0: none)")
)
SERVER_ID = Kind("server id", _whole(1, 2**32 - 1, "is not a whole number from 1 to 4294967295; e.g. {default}"))
BINLOG_SECONDS = Kind(
    "seconds (up to 4294967295)",
    _whole(1, 2**32 - 1, "is not a whole number from 1 to 4294967295; e.g. {default}"),
)
BOOLEAN = Kind("boolean", _boolean, False)
PATH = Kind("path", Path, None)  # relative to the checkout unless absolute; `~` is the user's home
FOLDER_IN_CHECKOUT = Kind("folder in the checkout", _inside_checkout)
ABSOLUTE_PATH = Kind("absolute path", _absolute)
IMAGE = Kind(
    "image reference", _matching(IMAGE_REFERENCE, "is not an image reference; e.g. mysql:8.4 or host/name:tag")
)
PROJECT_IMAGE_NAME = Kind(
    "image name",
    _matching(IMAGE_NAME, "is not a valid image name; use lowercase letters and digits, joined by '-', '_' or '.'"),
)
COMPOSE_PROJECT_NAME = Kind("compose project name", _compose_project)
REGISTRY = Kind(
    "registry address",
    _matching(
        REGISTRY_FORMAT,
        "is not a registry address; use HOST[:PORT][/PATH] in lowercase, e.g. registry.example.com/team, or leave it "
        "empty for the local registry",
    ),
)
PYTHON_MODULE = Kind("Python module", _matching(MODULE, "is not a Python module name; e.g. mysite.settings.production"))
WSGI_REFERENCE = Kind("MODULE:NAME", _wsgi)
URL_PATH = Kind("URL path", _url_path)
CLUSTER = Kind(
    "cluster name",
    _matching(CLUSTER_NAME, "is not usable; use 1-20 lowercase letters, digits or '-', starting with a letter"),
)
SUBNET = Kind("IPv4 network", _subnet)
NETWORKS = Kind("addresses or networks (comma-separated)", _networks, ())
