"""Container health (liveness): GET HEALTH_PATH (/health) on the local server. Needs nothing but Python.

Healthy on 200, and on 503 "migrations pending": the server works, only the schema is behind the code, and a
restart cannot fix that (Swarm would replace the replica over and over); the proxy, which checks /health itself
and wants 200 (readiness), keeps it out of rotation until `manage.py migrate` has run. Unhealthy otherwise
(no answer, the database unreachable, an error)."""

import json
import os
import sys
import urllib.error
import urllib.request

# HEALTH_PATH ([tool.lifecycle] health-path): the image's ENV, compose's and the stack's environment.
URL = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}{os.environ.get('HEALTH_PATH') or '/health'}"
# gunicorn.conf.py leaves requests with this User-Agent out of the access log (one every 2 s would drown it).
USER_AGENT = "lifecycle-healthcheck"
MIGRATIONS_PENDING = "migrations pending"  # django_site/views.py

try:
    request = urllib.request.Request(URL, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except urllib.error.HTTPError as error:
    try:
        status = json.loads(error.read()).get("status")
    except (ValueError, AttributeError, OSError):
        status = None
    if error.code == 503 and status == MIGRATIONS_PENDING:
        print(f"live, not ready: {URL}: {MIGRATIONS_PENDING} (the proxy sends it no traffic)")
        sys.exit(0)
    print(f"unhealthy: {URL}: {error}", file=sys.stderr)
    sys.exit(1)
except Exception as error:  # noqa: BLE001 - any failure means unhealthy; say which
    print(f"unhealthy: {URL}: {error}", file=sys.stderr)
    sys.exit(1)
