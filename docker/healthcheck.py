"""Container health: GET /health on the local server; healthy only on 200. Needs nothing but Python."""

import os
import sys
import urllib.request

URL = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"

try:
    with urllib.request.urlopen(URL, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:  # noqa: BLE001 - any failure means unhealthy; say which
    print(f"unhealthy: {URL}: {error}", file=sys.stderr)
    sys.exit(1)
