"""WSGI entry point of every adopted project: gunicorn serves `lifecycle_site.wsgi:application`.

The project's own WSGI application (LIFECYCLE_PROJECT_WSGI, `mysite.wsgi:application`; default: the settings'
WSGI_APPLICATION), under the suite's settings layer, wrapped in the health check when the project's own URLs do
not route HEALTH_PATH (a project with its own health view keeps it) and LAYER_HEALTH is not false, and in the
uploads' server (lifecycle_site/mediafiles.py) when the layer put MEDIA_ROOT on the media volume, MEDIA_URL is a path
on this site and LAYER_MEDIA_SERVE is not false, and in the Prometheus endpoint (/metrics) when the layer's METRICS
part is on.
"""

import importlib
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifecycle_site.settings")

from django.conf import settings

from lifecycle_site.health import HealthCheck
from lifecycle_site.layer import LayerError, health_path, switched_on
from lifecycle_site.mediafiles import MediaFiles
from lifecycle_site.metrics import MetricsEndpoint
from lifecycle_site.requestlog import RequestId


def load(reference: str):
    """`package.module:name` or `package.module.name` -> the object."""
    module, _, name = reference.partition(":") if ":" in reference else reference.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise LayerError(f"LIFECYCLE_PROJECT_WSGI={reference!r} cannot be loaded: {error}") from None


def project_application():
    reference = os.environ.get("LIFECYCLE_PROJECT_WSGI", "").strip() or getattr(settings, "WSGI_APPLICATION", "")
    if not reference:
        raise LayerError("no WSGI application: set LIFECYCLE_PROJECT_WSGI (wsgi-app in [tool.lifecycle])")
    ours = os.environ["DJANGO_SETTINGS_MODULE"]
    app = load(reference)
    # A wsgi.py that assigns DJANGO_SETTINGS_MODULE outright would bypass the layer: say so instead of serving.
    if ours != settings.SETTINGS_MODULE:
        raise LayerError(
            f"{reference} sets DJANGO_SETTINGS_MODULE={settings.SETTINGS_MODULE} itself, past the suite's {ours}; "
            "use os.environ.setdefault in it"
        )
    return app


CATCH_ALL_PROBE = "/lifecycle-no-such-page-7f3c9d/"  # a path no project routes on purpose


def project_routes(path: str) -> bool:
    """Whether the project's own URLs route `path` or `path/`: then its own view answers the health check. A
    catch-all (Wagtail's page serving: every path resolves to `serve`, which answers 404) routes nothing of its own:
    a path that resolves to the same view as a made-up one is not routed."""
    from django.urls import Resolver404, resolve

    try:
        catch_all = resolve(CATCH_ALL_PROBE).func
    except Resolver404:
        catch_all = None
    for candidate in (path, f"{path}/"):
        try:
            found = resolve(candidate)
        except Resolver404:
            continue
        if catch_all is None or found.func is not catch_all:
            return True
    return False


def serves_media(environ) -> bool:
    """The media volume is mounted (the layer applied MEDIA), MEDIA_URL is on this site (not a CDN's or a bucket's
    URL) and LAYER_MEDIA_SERVE is not false."""
    on_site = not str(settings.MEDIA_URL).startswith(("http://", "https://", "//"))
    return switched_on(environ, "MEDIA_SERVE") and "MEDIA" in getattr(settings, "LIFECYCLE_APPLIED", ()) and on_site


application = project_application()
if serves_media(os.environ):
    application = MediaFiles(application, str(settings.MEDIA_URL), str(settings.MEDIA_ROOT))
application = RequestId(application)  # the proxy's X-Request-ID in every log record of the request
if "METRICS" in getattr(settings, "LIFECYCLE_APPLIED", ()):
    application = MetricsEndpoint(application)  # /metrics for the stack's network and loopback (metrics.py)
if switched_on(os.environ, "HEALTH") and not project_routes(health_path(os.environ)):
    application = HealthCheck(application, health_path(os.environ))
