"""`invoke logs --request ID`: the id checked, the sources as argv, the lines kept."""

from __future__ import annotations

import pytest

from lifecycle import tracing
from lifecycle.commands import swarm
from lifecycle.errors import UserError
from lifecycle.runner import Result
from tests.helpers.recording import RecordingRunner

ID = "e051b096-78d9-4969-8d74-fabe5d80778b"


@pytest.mark.parametrize("value", ["", "short", "a b c d e f g h", 'x"; rm -rf /', "x" * 129])
def test_a_bad_request_id_is_one_line(value):
    with pytest.raises(UserError, match="is not a request id; copy the X-Request-ID header"):
        tracing.check_request_id(value)


def test_service_logs_argv():
    assert swarm.service_logs("shop_app") == ["docker", "service", "logs", "--no-trunc", "--timestamps", "shop_app"]


def test_only_the_lines_naming_the_id_as_a_whole_value():
    lines = [
        f'proxy-1  | {{"request_id": "{ID}", "status": 404}}',
        'prod-1  | {"request_id": "", "message": "booting"}',
        f'prod-1  | {{"request_id": "{ID}x", "message": "another request"}}',
        f'prod-1  | {{"logger": "django.request", "request_id": "{ID}"}}',
    ]
    assert tracing.matching(lines, ID) == [lines[0], lines[3]]


def test_compose_and_the_stack_are_read_and_nothing_found_is_one_line(make_settings):
    runner = RecordingRunner(default=Result(0, 'prod-1 | {"request_id": "other-request-id"}\n'))
    with pytest.raises(UserError, match=f"no log line names request {ID}"):
        tracing.request_lines(make_settings(COMPOSE_PROJECT_NAME="shop"), runner, ID)
    service_logs = ["docker", "service", "logs"]
    assert [call[:3] for call in runner.calls] == [["docker", "compose", "--project-name"], service_logs, service_logs]
    assert runner.calls[1][-1] == "shop_proxy" and runner.calls[2][-1] == "shop_app"
