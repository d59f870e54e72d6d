"""lifecycle.probes: each probe's exact command, and that a failing command is an answer, not an error."""

from __future__ import annotations

import signal
import socket
import sys
import time

import pytest

from lifecycle import probes
from lifecycle.runner import Result, SubprocessRunner, Terminated
from tests.helpers.recording import RecordingRunner

INSPECT = ("docker", "image", "inspect")
PULL = ("docker", "pull")


@pytest.mark.parametrize(
    ("answers", "available", "pulled"),
    [
        pytest.param({}, True, False, id="a present image is not pulled"),
        pytest.param({INSPECT: Result(1)}, True, True, id="a missing image that pulls is available"),
        pytest.param({INSPECT: Result(1), PULL: Result(1)}, False, True, id="no image and no registry"),
    ],
)
def test_image_available(answers, available, pulled):
    run = RecordingRunner(answers)
    assert probes.image_available(run, "python:3.12-slim") is available
    assert run.calls[0] == ["docker", "image", "inspect", "--format", "{{.Id}}", "python:3.12-slim"]
    assert (["docker", "pull", "--quiet", "python:3.12-slim"] in run.calls) is pulled


@pytest.mark.parametrize(
    ("probe", "argv", "answer", "expected"),
    [
        pytest.param(
            probes.engine_version, ["docker", "version", "--format", "{{.Server.Version}}"], Result(0, "28.1.1\n"),
            "28.1.1\n", id="engine version",
        ),
        pytest.param(
            probes.engine_version, ["docker", "version", "--format", "{{.Server.Version}}"], Result(1), None,
            id="engine down",
        ),
        pytest.param(
            probes.compose_version, ["docker", "compose", "version", "--short"], Result(0, "2.40.3\n"), "2.40.3\n",
            id="compose version",
        ),
        pytest.param(probes.compose_version, ["docker", "compose", "version", "--short"], Result(1), None,
                     id="no compose plugin"),
        pytest.param(probes.engine_answers, ["docker", "info"], Result(0), True, id="engine answers"),
        pytest.param(probes.engine_answers, ["docker", "info"], Result(124), False, id="engine hangs"),
        pytest.param(
            probes.docker_root_dir, ["docker", "info", "--format", "{{.DockerRootDir}}"],
            Result(0, "/var/lib/docker\n"), "/var/lib/docker", id="docker root dir",
        ),
        pytest.param(
            lambda run: probes.image_id(run, "shop:prod"), ["docker", "image", "inspect", "--format", "{{.Id}}",
            "shop:prod"], Result(0, "sha256:abc\n"), "sha256:abc", id="image id",
        ),
        pytest.param(
            lambda run: probes.image_id(run, "shop:prod"), ["docker", "image", "inspect", "--format", "{{.Id}}",
            "shop:prod"], Result(1), None, id="no such image",
        ),
        pytest.param(
            lambda run: probes.image_in_registry(run, "python:3.12-slim"),
            ["docker", "manifest", "inspect", "python:3.12-slim"], Result(1), False, id="no registry",
        ),
    ],
)  # fmt: skip
def test_each_probe_runs_one_command_and_never_raises(probe, argv, answer, expected):
    run = RecordingRunner(default=answer)
    assert probe(run) == expected
    assert run.calls == [argv]


def test_engine_answers_has_a_deadline():
    seen = {}

    def run(argv, **options):
        seen.update(options)
        return Result(0)

    probes.engine_answers(run)
    assert seen["timeout"] == probes.ENGINE_PROBE_TIMEOUT_S and seen["warn"] is True


def test_port_is_free_sees_a_listener():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert probes.port_is_free(port) is False
    assert probes.port_is_free(port) is True


# ------------------------------------------------------------------------------ the subprocess edge

QUIET = SubprocessRunner(echo=False)


def test_a_missing_program_is_exit_127_like_a_shell():
    assert QUIET(["lifecycle-no-such-program"], warn=True) == Result(127)


def test_a_command_past_its_deadline_is_exit_124_like_timeout():
    assert QUIET(["sleep", "5"], warn=True, timeout=0.2) == Result(124)


def test_the_buildkit_probe_builds_through_compose_and_removes_its_image(make_settings):
    run = RecordingRunner()
    assert probes.buildkit_cache_mounts_work(make_settings(), run) is True
    build, remove = run.calls
    assert build[:4] == ["docker", "--log-level", "error", "compose"] and build[-3:] == ["build", "--quiet", "probe"]
    assert build[build.index("--project-name") + 1] == probes.BUILDKIT_PROBE_IMAGE
    assert remove == ["docker", "image", "rm", "--force", probes.BUILDKIT_PROBE_IMAGE]


@pytest.mark.parametrize(
    ("answer", "owner"),
    [
        pytest.param(Result(0, "shop-1234abcd\n"), "shop-1234abcd", id="labelled"),
        pytest.param(Result(0, "<no value>\n"), "", id="built without the label"),
        pytest.param(Result(1), None, id="no such image"),
    ],
)
def test_image_owner(answer, owner):
    run = RecordingRunner({INSPECT: answer})
    assert probes.image_owner(run, "shop:prod") == owner
    assert run.calls == [
        [
            "docker",
            "image",
            "inspect",
            "--format",
            '{{index .Config.Labels "io.lifecycle.compose-project"}}',
            "shop:prod",
        ]
    ]


def test_port_published_by_asks_for_this_projects_containers_on_that_port():
    run = RecordingRunner(default=Result(0, "0123abcd\n"))
    assert probes.port_published_by(run, "shop-1234abcd", 8123)
    assert run.calls == [["docker", "ps", "--quiet", "--filter", "label=com.docker.compose.project=shop-1234abcd",
                          "--filter", "publish=8123"]]  # fmt: skip
    assert not probes.port_published_by(RecordingRunner(default=Result(0, "")), "shop-1234abcd", 8123)


@pytest.mark.parametrize(("answer", "exists"), [(Result(0, "shop_db-data\n"), True), (Result(1), False)])
def test_volume_exists(answer, exists):
    run = RecordingRunner(default=answer)
    assert probes.volume_exists(run, "shop_db-data") is exists
    assert run.calls == [["docker", "volume", "inspect", "--format", "{{.Name}}", "shop_db-data"]]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            Result(0, "sha256:base key-of-base\nsha256:prod key-of-prod\n"),
            [("sha256:base", "key-of-base"), ("sha256:prod", "key-of-prod")],
            id="both present",
        ),
        pytest.param(
            Result(0, "sha256:base <no value>\nsha256:prod \n"),
            [("sha256:base", None), ("sha256:prod", None)],
            id="present without the label",
        ),
        pytest.param(Result(1, "sha256:base key-of-base\n"), None, id="one missing: inspect fails"),
        pytest.param(Result(0, "sha256:base key-of-base\n"), None, id="fewer lines than images"),
    ],
)
def test_ids_and_label_answers_for_all_images_in_one_call_or_not_at_all(answer, expected):
    run = RecordingRunner({INSPECT: answer})
    assert probes.ids_and_label(run, ["python:3.13", "shop:prod"], "io.lifecycle.build-key") == expected
    template = '{{.Id}} {{index .Config.Labels "io.lifecycle.build-key"}}'
    assert run.calls == [["docker", "image", "inspect", "--format", template, "python:3.13", "shop:prod"]]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(Result(0, "abc123 mysql:8.4 running\n"), probes.ServiceContainer("abc123", "mysql:8.4", True),
                     id="running"),
        pytest.param(Result(0, "abc123 shop:prod exited\n"), probes.ServiceContainer("abc123", "shop:prod", False),
                     id="stopped"),
        pytest.param(Result(0, ""), None, id="no container"),
        pytest.param(Result(1), None, id="the engine does not answer"),
    ],
)  # fmt: skip
def test_service_container_asks_docker_ps_for_the_services_own_container(answer, expected):
    run = RecordingRunner({("docker", "ps"): answer})
    assert probes.service_container(run, "shop-1234abcd", "db") == expected
    assert run.calls == [["docker", "ps", "--all", "--no-trunc",
                          "--filter", "label=com.docker.compose.project=shop-1234abcd",
                          "--filter", "label=com.docker.compose.service=db",
                          "--filter", "label=com.docker.compose.oneoff=False",
                          "--format", "{{.ID}} {{.Image}} {{.State}}"]]  # fmt: skip


CLEANS_UP_ON_SIGTERM = (
    "import pathlib, signal, sys, time\n"
    "def stop(*_):\n"
    "    time.sleep(0.3); pathlib.Path(sys.argv[1]).write_text('cleaned up'); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "time.sleep(30)\n"
)


@pytest.mark.parametrize("capture", [False, True])
def test_sigterm_reaches_the_running_command_which_may_clean_up_before_it_goes_on(tmp_path, capture):
    """SIGTERM to a session (only its own process, as a CI runner's kill sends it): the command it runs (a task, a
    pytest run) gets it too and finishes its clean-up, instead of being killed at once."""

    def terminated(*_):
        raise Terminated()

    marker = tmp_path / "marker"
    before = signal.signal(signal.SIGALRM, terminated)
    started = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(Terminated):
            QUIET([sys.executable, "-c", CLEANS_UP_ON_SIGTERM, str(marker)], capture=capture)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
    assert marker.read_text() == "cleaned up" and time.monotonic() - started < 10
