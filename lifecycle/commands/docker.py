"""The one place that builds plain `docker` command lines: images, containers, volumes, registries.

Every builder returns an argument list; callers run it through a `Runner` (probes read the answers in
lifecycle/probes.py). Nothing here runs anything.
"""

from __future__ import annotations


def docker_argv(*args: str) -> list[str]:
    """Plain docker CLI calls (inspect, cp, image rm): the only other door to the engine."""
    return ["docker", *args]


def cat_in_image_argv(image: str, path: str) -> list[str]:
    """Print one file of an image, in a throwaway container with no network."""
    return docker_argv("run", "--rm", "--network", "none", "--entrypoint", "cat", image, path)


def volume_inspect_argv(name: str) -> list[str]:
    """Answers the volume's name when it exists, fails when it does not."""
    return docker_argv("volume", "inspect", "--format", "{{.Name}}", name)


def image_inspect_argv(image: str, template: str = "{{json .}}") -> list[str]:
    return docker_argv("image", "inspect", "--format", template, image)


def tag_argv(source: str, target: str) -> list[str]:
    return docker_argv("tag", source, target)


def push_argv(image: str) -> list[str]:
    return docker_argv("push", image)


def manifest_inspect_argv(reference: str, *, plain_http: bool = False) -> list[str]:
    """The manifest a registry holds for `repository@sha256:...` (or a tag), as JSON, without pulling. `plain_http`
    for a registry on the loopback, which the engine trusts over HTTP but the CLI's manifest command does not."""
    return docker_argv("manifest", "inspect", *["--insecure"] * plain_http, reference)
