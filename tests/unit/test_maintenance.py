"""Maintenance mode: builders as option -> argv, the runtime API lines and answers as tables, and the switch against
a scripted engine."""

from __future__ import annotations

import pytest

from lifecycle import maintenance
from lifecycle.commands import haproxy
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.maintenance import Maintenance, State
from lifecycle.runner import Result
from tests.helpers.recording import RecordingRunner

SCRIPT = haproxy.CLI_SCRIPT


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            haproxy.runtime_argv("c1", "add acl virt@maintenance.acl on"),
            ["docker", "exec", "c1", "bash", "-c", SCRIPT, "cli", "127.0.0.1", "9999",
             "add acl virt@maintenance.acl on"],
            id="a runtime API line: inside the proxy, as an argument, never spliced into the script",
        ),
        pytest.param(
            haproxy.compose_proxies("shop"),
            ["docker", "container", "ls", "--quiet", "--filter", "label=com.docker.compose.project=shop",
             "--filter", "label=com.docker.compose.service=proxy"],
            id="compose prod's proxy",
        ),
        pytest.param(
            haproxy.swarm_proxies("shop"),
            ["docker", "container", "ls", "--quiet", "--filter", "label=com.docker.swarm.service.name=shop_proxy"],
            id="the stack's proxy tasks on this node",
        ),
    ],
)  # fmt: skip
def test_argv(argv, expected):
    assert argv == expected


@pytest.mark.parametrize(
    ("on", "allow", "lines"),
    [
        pytest.param(False, [], ["clear acl virt@maintenance.acl"], id="off"),
        pytest.param(
            True,
            [],
            ["clear acl virt@maintenance-allow.acl", "clear acl virt@maintenance.acl",
             "add acl virt@maintenance.acl on"],
            id="on, nobody allowed",
        ),
        pytest.param(
            True,
            ["203.0.113.7/32", "10.0.0.0/8"],
            ["clear acl virt@maintenance-allow.acl", "add acl virt@maintenance-allow.acl 203.0.113.7/32",
             "add acl virt@maintenance-allow.acl 10.0.0.0/8", "clear acl virt@maintenance.acl",
             "add acl virt@maintenance.acl on"],
            id="on, with an allow-list (replaced, not added to)",
        ),
    ],
)  # fmt: skip
def test_commands(on, allow, lines):
    assert maintenance.commands(on, allow) == lines


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", []),
        ("203.0.113.7", ["203.0.113.7/32"]),
        (" 10.1.2.3/8 , ::1 ", ["10.0.0.0/8", "::1/128"]),
    ],
)
def test_allow_list(value, allowed):
    assert maintenance.check_allow(value) == allowed


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "1.2.3.4;rm"])
def test_a_bad_allow_list_is_one_line(value):
    with pytest.raises(UserError, match=r"MAINTENANCE_ALLOW has .*, not an address or network"):
        maintenance.check_allow(value)


@pytest.mark.parametrize(
    ("answer", "on"),
    [("0x7f01d5fc8020 on\n\n", True), ("\n", False), ("", False), ("0x1 off\n", False)],
)
def test_is_on(answer, on):
    assert maintenance.is_on(answer) is on


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("\n", False),
        ("0x7f01 on\n", False),
        ("Unknown ACL identifier. Please use #<id> or <file>.\n", True),
        ("Permission denied\n", True),
    ],
)
def test_answer_error(answer, error):
    assert bool(maintenance.answer_error(answer)) is error


def test_the_page_is_the_projects_503_template_else_the_plain_one(make_settings, tmp_path):
    settings = make_settings()
    assert maintenance.page_file(settings) == tmp_path / "docker/proxy/maintenance.html"
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates/503.html").write_text("<h1>brb</h1>", encoding="utf-8")
    assert maintenance.page_file(make_settings()) == tmp_path / "templates/503.html"


def test_a_missing_chosen_page_is_one_line(make_settings):
    with pytest.raises(UserError, match=r"MAINTENANCE_PAGE='down\.html' is not a file"):
        maintenance.page_file(make_settings(MAINTENANCE_PAGE="down.html"))


def test_on_switches_every_running_proxy_and_records_the_state(make_settings, tmp_path):
    runner = RecordingRunner(
        {
            ("docker", "container", "ls", "--quiet", "--filter", "label=com.docker.compose.project=shop"): Result(
                0, "c1\n"
            ),
            ("docker", "container", "ls"): Result(0, "s1\ns2\n"),
        }
    )
    settings = make_settings(COMPOSE_PROJECT_NAME="shop", MAINTENANCE_ALLOW="10.0.0.0/8")
    lines = Maintenance(Context(settings, runner)).switch(True)
    sent = [(call[2], call[-1]) for call in runner.calls if call[:2] == ["docker", "exec"]]
    expected = maintenance.commands(True, ["10.0.0.0/8"])
    assert sent == [(container, line) for container in ("c1", "s1", "s2") for line in expected]
    assert lines == [
        "maintenance on on the compose proxy (1 container(s)); still reaching the app: /health, 10.0.0.0/8",
        "maintenance on on the swarm proxy (2 container(s)); still reaching the app: /health, 10.0.0.0/8",
    ]
    assert State.read(tmp_path, "swarm").on and State.read(tmp_path, "compose").allow == ("10.0.0.0/8",)
    assert not any(call[:2] == ["docker", "restart"] or "rm" in call for call in runner.calls)


def test_no_running_proxy_is_one_line(make_settings):
    runner = RecordingRunner({("docker", "container", "ls"): Result(0, "")})
    with pytest.raises(UserError, match=r"no proxy of this checkout is running.*invoke up --stage prod"):
        Maintenance(Context(make_settings(), runner)).switch(True)


def test_a_refused_line_names_the_proxy_and_the_answer(make_settings):
    runner = RecordingRunner(
        {("docker", "container", "ls"): Result(0, "abcdef0123456789\n"), ("docker", "exec"): Result(0, "Unknown ACL")}
    )
    with pytest.raises(
        UserError, match=r"the proxy abcdef012345 refused 'clear acl virt@maintenance.acl': Unknown ACL"
    ):
        Maintenance(Context(make_settings(), runner)).switch(False, "compose")


def test_reapply_switches_a_new_proxy_on_only_when_recorded_on(make_settings, tmp_path):
    runner = RecordingRunner({("docker", "container", "ls"): Result(0, "c9\n")})
    Maintenance(Context(make_settings(), runner)).reapply("compose")
    assert runner.calls == []
    State(True, "2026-12-04T08:00:00Z", ("10.0.0.0/8",)).write(tmp_path, "compose")
    Maintenance(Context(make_settings(), runner)).reapply("compose")
    assert [call[-1] for call in runner.calls if call[1] == "exec"] == maintenance.commands(True, ["10.0.0.0/8"])


def test_a_bad_target_is_one_line(make_settings):
    with pytest.raises(UserError, match="--target 'k8s' is not one of compose, swarm"):
        Maintenance(Context(make_settings(), RecordingRunner())).switch(True, "k8s")
