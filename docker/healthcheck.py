"""Container health: GET /health on the local server; healthy only on 200. Needs nothing but Python."""

import os
import sys
import urllib.request

URL = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"
# gunicorn.conf.py leaves requests with this User-Agent out of the access log (one every 2 s would drown it).
USER_AGENT = "lifecycle-healthcheck"

try:
    request = urllib.request.Request(URL, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:  # noqa: BLE001 - any failure means unhealthy; say which
    print(f"unhealthy: {URL}: {error}", file=sys.stderr)
    sys.exit(1)
