"""/health: 200 with the database, 503 without it, and recovery without restarting the app."""

from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test import Client

REACHABLE = {"status": "ok", "database": "reachable"}
UNREACHABLE = {"status": "error", "database": "unreachable"}

# transaction=True: no test transaction wraps the requests, so the view's connection.close() really
# drops the connection and the following request has to reconnect, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/health", "/health/"], ids=["without-slash", "with-slash"])
def test_health_is_ok_when_database_answers(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == REACHABLE


def test_health_is_served_over_plain_http_despite_ssl_redirect(client, settings):
    # The container healthcheck calls the app directly over HTTP, without the proxy's header.
    assert settings.SECURE_SSL_REDIRECT
    assert client.get("/health").status_code == 200
    assert client.get("/api/notes").status_code == 301


def test_a_client_claiming_https_on_plain_http_is_still_redirected(client):
    """Only gunicorn decides the scheme (for the proxy's address); Django ignores a client's X-Forwarded-Proto."""
    response = client.get("/api/notes", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 301
    assert "Strict-Transport-Security" not in response


def test_health_is_503_when_query_fails_then_recovers(client):
    with mock.patch.object(connection, "cursor", side_effect=OperationalError(2006, "MySQL server has gone away")):
        failed = client.get("/health")
    assert failed.status_code == 503
    assert failed["Content-Type"] == "application/json"
    assert failed.json() == UNREACHABLE

    recovered = client.get("/health")
    assert recovered.status_code == 200
    assert recovered.json() == REACHABLE


def test_health_is_503_when_server_refuses_connections_then_recovers(client):
    # Drop the open connection and point it at a port nobody listens on: a database that is down.
    connection.close()
    with mock.patch.dict(connection.settings_dict, {"HOST": "127.0.0.1", "PORT": 1}):
        failed = client.get("/health")
    assert failed.status_code == 503
    assert failed.json() == UNREACHABLE
    assert connection.connection is None

    recovered = client.get("/health")
    assert recovered.status_code == 200
    assert recovered.json() == REACHABLE


def test_health_closes_the_broken_connection_so_the_next_request_reconnects(client):
    client.get("/health")
    broken_connection = connection.connection
    assert broken_connection is not None
    with mock.patch.object(connection, "cursor", side_effect=OperationalError(2013, "Lost connection")):
        client.get("/health")
    assert connection.connection is None

    client.get("/health")
    assert connection.connection is not None
    assert connection.connection is not broken_connection


def test_health_refuses_post(client):
    assert client.post("/health").status_code == 405


def test_health_is_503_migrations_pending_while_the_schema_is_behind_the_code(client):
    """A restored old backup: the code has a migration the database lacks, so pages would answer 500. /health
    says so (the proxy then sends the server no traffic) and turns 200 once migrate has run."""
    from django.core.management import call_command

    call_command("migrate", "notes", "zero", verbosity=0)
    try:
        pending = client.get("/health")
        assert pending.status_code == 503
        assert pending.json() == {"status": "migrations pending", "database": "reachable",
                                  "pending": ["notes.0001_initial"]}  # fmt: skip
    finally:
        call_command("migrate", verbosity=0)
    assert client.get("/health").json() == REACHABLE


@pytest.mark.parametrize(
    ("host", "ssl_port", "location"),
    [
        pytest.param("127.0.0.1:8000", 8443, "https://127.0.0.1:8443/admin/login/?next=/x", id="to the proxy's port"),
        pytest.param("localhost:8000", 8443, "https://localhost:8443/admin/login/?next=/x", id="the host name kept"),
        pytest.param("[::1]:8000", 8443, "https://[::1]:8443/admin/login/?next=/x", id="an IPv6 address"),
        pytest.param("127.0.0.1:8000", 443, "https://127.0.0.1/admin/login/?next=/x", id="443 needs no port"),
        pytest.param("127.0.0.1:8000", 0, "https://127.0.0.1:8000/admin/login/?next=/x", id="unset: Django's own"),
    ],
)
def test_the_https_redirect_goes_to_the_port_that_serves_https(client, settings, host, ssl_port, location):
    """Plain HTTP on APP_PORT: HTTPS is on the proxy's HTTPS_PORT (DJANGO_SECURE_SSL_PORT), not on APP_PORT."""
    settings.SECURE_SSL_PORT = ssl_port
    response = client.get("/admin/login/?next=/x", HTTP_HOST=host)
    assert (response.status_code, response["Location"]) == (301, location)
    assert client.get("/health", HTTP_HOST=host).status_code == 200


def test_only_the_https_redirect_moves(client, settings):
    settings.SECURE_SSL_PORT = 8443
    assert client.get("/admin", secure=True)["Location"] == "/admin/"  # APPEND_SLASH's redirect is left alone
    assert client.get("/admin/", HTTP_HOST="evil.example.com").status_code == 400  # ALLOWED_HOSTS still rules
    settings.SECURE_SSL_HOST = "secure.example.com"
    other = Client()  # middleware reads SECURE_SSL_HOST when it is loaded
    assert other.get("/admin/", HTTP_HOST="127.0.0.1:8000")["Location"] == "https://secure.example.com/admin/"
    assert other.get("/admin/", HTTP_HOST="evil.example.com")["Location"] == "https://secure.example.com/admin/"
