"""lifecycle.registry without an engine: the local registry's commands, its blob list, and what start refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import registry
from lifecycle.errors import UserError
from lifecycle.settings import load_settings

ROOT = Path("/checkout")
SETTINGS = load_settings(
    root=ROOT, environ={"PROJ_NAME": "shop", "COMPOSE_PROJECT_NAME": "shop-1", "REGISTRY_PORT": "5401"}
)
HEAD = [
    "docker",
    "compose",
    "--project-name",
    "shop-1-registry",
    "--file",
    "/checkout/docker/registry.yaml",
    "--profile",
    "*",
]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(registry.up_argv(SETTINGS), [*HEAD, "up", "--detach", "--no-build", "registry"], id="up"),
        pytest.param(registry.down_argv(SETTINGS), [*HEAD, "down"], id="down-keeps-volume"),
        pytest.param(
            registry.down_argv(SETTINGS, volumes=True), [*HEAD, "down", "--volumes"], id="down-volumes"
        ),
        pytest.param(
            registry.blob_sizes_argv(SETTINGS),
            [*HEAD, "exec", "--no-TTY", "registry", "find", "/var/lib/registry", "-path", "*/v2/blobs/*", "-type", "f",
             "-name", "data", "-exec", "stat", "-c", "%s %n", "{}", "+"],
            id="blob-sizes",
        ),
    ],
)  # fmt: skip
def test_argv(argv, expected):
    assert argv == expected


@pytest.mark.parametrize(
    ("environ", "address", "repository"),
    [
        pytest.param({}, "127.0.0.1:5000", "127.0.0.1:5000/project", id="empty-means-local-default-port"),
        pytest.param(
            {"REGISTRY_PORT": "5401", "PROJ_NAME": "shop"}, "127.0.0.1:5401", "127.0.0.1:5401/shop", id="local"
        ),
        pytest.param(
            {"REGISTRY": "registry.example.com/team"},
            "registry.example.com/team",
            "registry.example.com/team/project",
            id="remote-with-path",
        ),
    ],
)
def test_registry_address_and_repository(tmp_path, environ, address, repository):
    settings = load_settings(root=tmp_path, environ=environ)
    assert (settings.registry, settings.release_repository) == (address, repository)


@pytest.mark.parametrize(
    "value", ["Registry.example.com", "registry.example.com/Team", "https://registry.example.com", "a b", "host:port"]
)
def test_malformed_registry_is_refused_in_one_line(tmp_path, value):
    with pytest.raises(UserError, match=r"^REGISTRY='.*' is not a registry address; use HOST\[:PORT\]\[/PATH\]"):
        load_settings(root=tmp_path, environ={"REGISTRY": value})


def test_parse_blob_sizes_keeps_only_blob_data_files():
    output = (
        "1234 /var/lib/registry/docker/registry/v2/blobs/sha256/ab/abcdef/data\n"
        "99 /var/lib/registry/docker/registry/v2/blobs/sha256/01/0123/data\n"
        "find: something odd\n"
    )
    assert registry.parse_blob_sizes(output) == {"sha256:abcdef": 1234, "sha256:0123": 99}


def test_blob_delta_counts_only_new_blobs():
    before = {"sha256:a": 10, "sha256:b": 20}
    after = {"sha256:a": 10, "sha256:b": 20, "sha256:c": 5, "sha256:d": 7}
    assert registry.blob_delta(before, after) == registry.BlobDelta(blobs=2, bytes=12)


def test_start_refuses_a_remote_registry_and_runs_nothing(
    tmp_path,
):
    from tests.helpers.recording import RecordingRunner

    run = RecordingRunner()
    settings = load_settings(root=tmp_path, environ={"REGISTRY": "registry.example.com"})
    with pytest.raises(UserError, match=r"REGISTRY=registry\.example\.com is set"):
        registry.start(settings, run)
    assert run.calls == []


def test_wait_until_answering_names_the_container_at_the_deadline():
    with pytest.raises(UserError, match=r"did not answer on 127.0.0.1:5401 within 0s; see docker logs shop-registry-1"):
        registry.wait_until_answering("127.0.0.1:5401", "shop-registry-1", deadline_s=0, probe=lambda address: False)
