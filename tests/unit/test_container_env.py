"""lifecycle.container_env: the values the containers read, refused on the host before a build."""

from __future__ import annotations

import pytest

from lifecycle import container_env
from lifecycle.errors import UserError


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="nothing set: the defaults"),
        pytest.param({"DJANGO_LOG_LEVEL": "", "GUNICORN_WORKERS": ""}, id="empty means the default"),
        pytest.param({"DJANGO_LOG_LEVEL": "WARNING", "GUNICORN_LOG_LEVEL": "debug"}, id="log levels"),
        pytest.param({"GUNICORN_WORKERS": "4", "GUNICORN_MAX_REQUESTS": "0", "DB_WAIT_TIMEOUT": "0"}, id="numbers"),
        pytest.param({"DJANGO_SECURE_COOKIES": "off", "DJANGO_MIGRATE": "false"}, id="switches"),
        pytest.param({"UNRELATED": "anything #"}, id="other variables are not ours to judge"),
    ],
)
def test_accepts(env):
    container_env.check(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"DJANGO_LOG_LEVEL": "WARNING  # quieter logs"},
            "DJANGO_LOG_LEVEL='WARNING  # quieter logs' is not one of: DEBUG, INFO, WARNING, ERROR, CRITICAL; "
            "fix it in .env or the environment (nothing was built)",
            id="a comment kept in a value (as an old parser did)",
        ),
        pytest.param({"DJANGO_LOG_LEVEL": "warning"}, "DJANGO_LOG_LEVEL='warning' is not one of", id="case matters"),
        pytest.param({"GUNICORN_WORKERS": "0"}, "GUNICORN_WORKERS='0' is not a whole number >= 1", id="zero workers"),
        pytest.param({"GUNICORN_THREADS": "four"}, "GUNICORN_THREADS='four' is not a whole number", id="a word"),
        pytest.param({"GUNICORN_TIMEOUT": "-1"}, "GUNICORN_TIMEOUT='-1' is not a whole number", id="negative"),
        pytest.param({"DB_WAIT_TIMEOUT": "60s"}, "DB_WAIT_TIMEOUT='60s' is not a whole number >= 0", id="a unit"),
        pytest.param({"DJANGO_MIGRATE": "yes"}, "DJANGO_MIGRATE='yes' is not one of: true, false", id="migrate"),
        pytest.param({"DJANGO_SECURE_COOKIES": "maybe"}, "DJANGO_SECURE_COOKIES='maybe' is not one of", id="bool"),
    ],
)
def test_refuses_in_one_line(env, message):
    with pytest.raises(UserError) as error:
        container_env.check(env)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
