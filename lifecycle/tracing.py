"""`invoke logs --request ID`: one request across the proxy's, gunicorn's and Django's log lines.

The proxy gives every request an id (X-Request-ID, returned to the client: docker/proxy/haproxy.cfg) and each of
the three writes it into its JSON log lines (lifecycle_site/requestlog.py, docker/gunicorn.conf.py). This reads the
logs of compose's containers and of the swarm stack's app and proxy services, and keeps the lines naming the id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lifecycle.commands import compose, swarm
from lifecycle.errors import UserError
from lifecycle.runner import Runner
from lifecycle.settings import Settings

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")  # what the proxy generates is a UUID
LOGS_SECONDS = 30  # `docker service logs` can hang on a node that went away


def check_request_id(value: str) -> str:
    text = value.strip()
    if not REQUEST_ID.fullmatch(text):
        raise UserError(f"--request {value!r} is not a request id; copy the X-Request-ID header of the response")
    return text


def matching(lines: Iterable[str], request_id: str) -> list[str]:
    """The lines that carry the id as a whole value (a JSON string), in the order given."""
    quoted = f'"{request_id}"'
    return [line for line in lines if quoted in line]


def request_lines(settings: Settings, run: Runner, value: str) -> list[str]:
    request_id = check_request_id(value)
    sources = [compose.logs_argv(settings, tail="all")]
    sources += [swarm.service_logs(swarm.service_name(settings.project_name, name)) for name in ("proxy", "app")]
    found: list[str] = []
    for argv in sources:
        answer = run(argv, env=settings.env, warn=True, capture=True, timeout=LOGS_SECONDS)
        if answer.ok:
            found += matching((answer.stdout + "\n" + answer.stderr).splitlines(), request_id)
    if not found:
        raise UserError(
            f"no log line names request {request_id} (compose's containers, the stack's app and proxy); "
            "with LOG_FORMAT=text the app's lines carry no id"
        )
    return found
