"""The app's Prometheus metrics for every adopted project, through django-prometheus (LAYER_METRICS).

`instrumented(settings)` (the settings layer's METRICS part, pure, no Django needed) adds metrics to a project's
settings without an edit of its code: `RequestMetrics` first of its middleware (each request's latency by view and
method, whose count is the requests; responses by status) and django-prometheus's database backends in place of
Django's (statements, errors and query time by database). Not django-prometheus's own two middleware: they update a
dozen series per request (body sizes, transports, charsets, templates…), which cost 14 % of /health's throughput on
2 cores against 1 to 3 % for the two series here (`nox -s bench`, section observe). A project that set
django-prometheus's middleware up itself keeps them, and gets no second set. `MetricsEndpoint` (a WSGI wrapper,
lifecycle_site/wsgi.py) answers METRICS_PATH before the project's URLs, middleware and ALLOWED_HOSTS are involved.

Only from inside the stack's network or on loopback: the HTTPS proxy refuses /metrics (docker/proxy/haproxy.cfg), and
this endpoint answers 404 to any request a proxy relayed (it carries X-Forwarded-For or Forwarded, which the suite's
proxy always adds), so a path the proxy's rule missed (`/%6Detrics`) is refused too. Scrapers talk to the app's port
directly, with no such header.

gunicorn runs several worker processes: docker/gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR (in /dev/shm,
emptied when gunicorn starts), each worker writes its values there, and the endpoint sums them
(prometheus_client's multiprocess mode). Without that variable (runserver, tests) the process's own registry.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

METRICS_PATH = "/metrics"
APP = "django_prometheus"
MIDDLEWARE = "lifecycle_site.metrics.RequestMetrics"
# django-prometheus's own middleware: a project that lists either keeps its own request metrics (the same names)
THEIRS = (
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
)
UNNAMED_VIEW = "<unnamed view>"  # a request no URL pattern resolved (404s), as django-prometheus names it
# Django's backends that django-prometheus wraps (the same backend, counting and timing each statement).
ENGINES = {
    "django.db.backends.mysql": "django_prometheus.db.backends.mysql",
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
    "django.contrib.gis.db.backends.postgis": "django_prometheus.db.backends.postgis",
    "django.contrib.gis.db.backends.spatialite": "django_prometheus.db.backends.spatialite",
}
RELAY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED")


def instrumented(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings django-prometheus needs, laid over `settings`; what the project set up itself is kept."""
    apps = list(settings.get("INSTALLED_APPS") or [])
    middleware = list(settings.get("MIDDLEWARE") or [])
    databases = {alias: dict(config) for alias, config in (settings.get("DATABASES") or {}).items()}
    for config in databases.values():
        config["ENGINE"] = ENGINES.get(config.get("ENGINE", ""), config.get("ENGINE", ""))
    return {
        "INSTALLED_APPS": apps if APP in apps else [*apps, APP],
        # First: the whole request is timed, whatever the project's middleware do.
        "MIDDLEWARE": middleware if {MIDDLEWARE, *THEIRS} & set(middleware) else [MIDDLEWARE, *middleware],
        "DATABASES": databases,
    }


@functools.cache
def http_metrics() -> tuple[Any, Any]:
    """The two request series, registered once per process on first use (a project with django-prometheus's own
    middleware never uses them, so their names are free for its)."""
    from prometheus_client import Counter, Histogram

    latency = Histogram(
        "django_http_requests_latency_seconds_by_view_method",
        "Seconds from the request's arrival at the first middleware to its response, by view and method.",
        ["method", "view"],
    )
    responses = Counter("django_http_responses_total_by_status", "Responses by HTTP status.", ["status"])
    return latency, responses


class RequestMetrics:
    """Django middleware, first of all: each request's latency (by view and method) and its response's status."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.latency, self.responses = http_metrics()

    def __call__(self, request: Any) -> Any:
        started = time.perf_counter()
        response = self.get_response(request)  # a view's exception comes back as its 500 response (Django's handler)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else "") or UNNAMED_VIEW
        self.latency.labels(request.method, view).observe(time.perf_counter() - started)
        self.responses.labels(str(response.status_code)).inc()
        return response


def relayed(environ: Mapping[str, str]) -> bool:
    """Whether a proxy passed this request on (the suite's HTTPS proxy always adds X-Forwarded-For)."""
    return any(environ.get(header) for header in RELAY_HEADERS)


def exposition(accept: str) -> tuple[bytes, str]:
    """Every metric in the format the scraper asks for: summed over gunicorn's workers in multiprocess mode."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
    from prometheus_client.exposition import choose_encoder

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class MetricsEndpoint:
    """`app` with GET/HEAD `path` (and `path/`) answered here, never cached; 404 when a proxy relayed it."""

    def __init__(self, app: WsgiApp, path: str = METRICS_PATH, render: Callable[[str], tuple[bytes, str]] = exposition):
        self.app = app
        self.paths = {path, path + "/"}
        self.render = render

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in self.paths:
            return self.app(environ, start_response)
        if relayed(environ):
            return answer(start_response, "404 Not Found", b"Not Found\n", "text/plain")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return answer(start_response, "405 Method Not Allowed", b"GET only\n", "text/plain", [("Allow", "GET")])
        body, content_type = self.render(environ.get("HTTP_ACCEPT", ""))
        return answer(start_response, "200 OK", b"" if environ["REQUEST_METHOD"] == "HEAD" else body, content_type)


def answer(
    start_response: Callable, status: str, body: bytes, content_type: str, extra: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    start_response(status, [*headers, *extra])
    return [body]
