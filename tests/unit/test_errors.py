"""lifecycle.errors: an entry point ends on one line and status 1 for an expected failure, and only then."""

from __future__ import annotations

import pytest

from lifecycle.errors import CommandFailed, UserError, exit_status


def test_a_user_error_is_one_prefixed_line_and_status_1(capsys):
    def body():
        raise UserError("APP_PORT='x' is not a port number; set it to a number from 1 to 65535")

    assert exit_status(body, prefix="bootstrap") == 1
    assert capsys.readouterr().err == (
        "bootstrap: APP_PORT='x' is not a port number; set it to a number from 1 to 65535\n"
    )


def test_a_failed_command_names_the_command(capsys):
    def body():
        raise CommandFailed(["docker", "import", "a b.tar"], 125)

    assert exit_status(body) == 1
    assert capsys.readouterr().err == "error: command failed with exit status 125: docker import 'a b.tar'\n"


@pytest.mark.parametrize(("returned", "status"), [(None, 0), (0, 0), (3, 3)])
def test_success_passes_the_status_on(returned, status, capsys):
    assert exit_status(lambda: returned) == status
    assert capsys.readouterr().err == ""


def test_an_unexpected_error_is_not_swallowed():
    def body():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        exit_status(body)
