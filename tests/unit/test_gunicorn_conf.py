"""docker/gunicorn.conf.py's trusted peers: whose X-Forwarded-* headers gunicorn believes (issue 23, Low)."""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import json
import sys
import types

import pytest

from tests.helpers import CHECKOUT


def load_conf():
    """The config module, loaded with a stand-in for gunicorn's logger class (gunicorn is in the images only), which
    records the requests it logs."""
    glogging = types.ModuleType("gunicorn.glogging")
    glogging.Logger = type("Logger", (), {"access": lambda self, resp, req, *args: logged_paths.append(req.path)})
    saved = {name: sys.modules.get(name) for name in ("gunicorn", "gunicorn.glogging")}
    sys.modules["gunicorn"], sys.modules["gunicorn.glogging"] = types.ModuleType("gunicorn"), glogging
    try:
        spec = importlib.util.spec_from_file_location("gunicorn_conf", CHECKOUT / "docker" / "gunicorn.conf.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


logged_paths: list[str] = []


@pytest.fixture(scope="module")
def conf():
    return load_conf()


@pytest.mark.parametrize(
    ("health_path", "quiet", "logged"),
    [
        pytest.param(None, ["/health", "/health/"], ["/healthz", "/"], id="default /health"),
        pytest.param("/healthz", ["/healthz", "/healthz/"], ["/health", "/"], id="HEALTH_PATH"),
        pytest.param("/up/", ["/up", "/up/"], ["/health"], id="with its slash"),
    ],
)
def test_the_access_log_leaves_out_the_health_checks_of_health_path(monkeypatch, health_path, quiet, logged):
    monkeypatch.setenv("LOG_FORMAT", "text")  # gunicorn's own access line (the stand-in records it); JSON: below
    if health_path:
        monkeypatch.setenv("HEALTH_PATH", health_path)
    else:
        monkeypatch.delenv("HEALTH_PATH", raising=False)
    logger = load_conf().QuietHealthCheckLogger()
    logged_paths.clear()
    for path in [*quiet, *logged]:
        request = types.SimpleNamespace(path=path)
        logger.access(None, request, {"HTTP_USER_AGENT": "lifecycle-healthcheck"}, datetime.timedelta(0))
    person = {"HTTP_USER_AGENT": "curl"}
    logger.access(None, types.SimpleNamespace(path=quiet[0]), person, datetime.timedelta(0))  # a person's: logged
    assert logged_paths == [*logged, quiet[0]]


HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
# compose: one bridge network 172.18.0.0/16, default route through its gateway 172.18.0.1
COMPOSE = (
    HEADER
    + "eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    + "eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)
# swarm: the overlay 10.0.1.0/24 (no gateway) and docker_gwbridge 172.19.0.0/16 with the default route
SWARM = (
    HEADER + "eth1\t00000000\t010013AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth1\t000013AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)


def trusted(conf, table: str, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(item) for item in conf.trusted_peers(table).split(","))


@pytest.mark.parametrize(
    ("table", "address", "believed"),
    [
        pytest.param(COMPOSE, "172.18.0.3", True, id="the proxy on the compose network"),
        pytest.param(COMPOSE, "172.18.255.254", True, id="the last address of the network"),
        pytest.param(COMPOSE, "172.18.0.1", False, id="the gateway: the published port's traffic"),
        pytest.param(COMPOSE, "10.0.0.7", False, id="an address on no network of the container"),
        pytest.param(COMPOSE, "127.0.0.1", True, id="loopback: an exec in the container"),
        pytest.param(SWARM, "10.0.1.9", True, id="the swarm proxy on the overlay"),
        pytest.param(SWARM, "172.19.0.1", False, id="the gwbridge gateway"),
        pytest.param("", "172.18.0.3", False, id="no route table: loopback only"),
    ],
)
def test_trusted_peers(conf, table, address, believed):
    assert trusted(conf, table, address) is believed


def test_the_default_is_never_everyone(conf):
    assert conf.forwarded_allow_ips != "*"
    assert "*" not in conf.trusted_peers(COMPOSE)


@pytest.mark.parametrize(
    ("status", "environ", "status_out", "request_id"),
    [
        ("200 OK", {"HTTP_X_REQUEST_ID": "e051b096-78d9-4969-8d74-fabe5d80778b"}, 200,
         "e051b096-78d9-4969-8d74-fabe5d80778b"),
        ("404 Not Found", {}, 404, ""),
        ("503 Service Unavailable", {"HTTP_X_REQUEST_ID": 'a"b\nc'}, 503, ""),  # never written as it came
    ],
)  # fmt: skip
def test_the_access_log_is_one_json_object_with_the_request_id(conf, status, environ, status_out, request_id):
    line = conf.access_record(status, "GET", '/x"y', {**environ, "REMOTE_ADDR": "10.0.0.2"}, 12, 0.0123)
    assert "\n" not in line
    record = json.loads(line)
    assert (record["status"], record["request_id"], record["path"]) == (status_out, request_id, '/x"y')
    assert record["request"] == 'GET /x"y' and '"request": "GET /x' in line  # `grep "GET /x"` still finds it
    assert (record["bytes"], record["ms"], record["client"], record["logger"]) == (
        12,
        12.3,
        "10.0.0.2",
        "gunicorn.access",
    )
