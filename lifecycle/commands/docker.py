"""The one place that builds plain `docker` command lines: images, containers, volumes, registries.

Every builder returns an argument list; callers run it through a `Runner` (probes read the answers in
lifecycle/probes.py). Nothing here runs anything.
"""

from __future__ import annotations

from collections.abc import Sequence

OWNER_LABEL = "io.lifecycle.compose-project"  # docker/compose.yaml labels each image with its compose project


def docker_argv(*args: str) -> list[str]:
    """Plain docker CLI calls (inspect, cp, image rm): the only other door to the engine."""
    return ["docker", *args]


def cat_in_image_argv(image: str, path: str) -> list[str]:
    """Print one file of an image, in a throwaway container with no network."""
    return docker_argv("run", "--rm", "--network", "none", "--entrypoint", "cat", image, path)


def volume_inspect_argv(name: str) -> list[str]:
    """Answers the volume's name when it exists, fails when it does not."""
    return docker_argv("volume", "inspect", "--format", "{{.Name}}", name)


def volume_rm_argv(*names: str) -> list[str]:
    """Removes the volumes; one that does not exist is no error."""
    return docker_argv("volume", "rm", "--force", *names)


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


# ------------------------------------------------------------------------------------------ the engine
def version_argv() -> list[str]:
    return docker_argv("version", "--format", "{{.Server.Version}}")


def compose_version_argv() -> list[str]:
    return docker_argv("compose", "version", "--short")


def info_argv(template: str | None = None) -> list[str]:
    return docker_argv("info", *(["--format", template] if template else []))


# -------------------------------------------------------------------------------------------- images
def label_template(label: str) -> str:
    """The `--format` template for one label's value (`<no value>` when there is none)."""
    return f'{{{{index .Config.Labels "{label}"}}}}'


def image_ids_argv(images: Sequence[str], label: str | None = None) -> list[str]:
    """One line per present image: its id, and with `label` that label's value after a space."""
    template = "{{.Id}}" + (f" {label_template(label)}" if label else "")
    return docker_argv("image", "inspect", "--format", template, *images)


def image_label_argv(image: str, label: str) -> list[str]:
    return image_inspect_argv(image, label_template(label))


def image_tags_argv(repository: str) -> list[str]:
    return docker_argv("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository)


def superseded_builds_argv(project: str) -> list[str]:
    """The untagged images the compose project built (a later build took their tags)."""
    owned = f"label={OWNER_LABEL}={project}"
    return docker_argv("image", "ls", "--quiet", "--no-trunc", "--filter", "dangling=true", "--filter", owned)


def pull_argv(image: str) -> list[str]:
    return docker_argv("pull", "--quiet", image)


def image_rm_argv(*images: str, force: bool = False) -> list[str]:
    return docker_argv("image", "rm", *["--force"] * force, *images)


# ---------------------------------------------------------------------------------------- containers
def project_filter(project: str) -> list[str]:
    """`docker ps` filter for the containers of one compose project."""
    return ["--filter", f"label=com.docker.compose.project={project}"]


def service_container_argv(project: str, service: str) -> list[str]:
    """The service's own container (never a one-off `compose run`): id, image, state."""
    labels = {"service": service, "oneoff": "False"}
    filters = [arg for key, value in labels.items() for arg in ("--filter", f"label=com.docker.compose.{key}={value}")]
    return docker_argv(
        "ps", "--all", "--no-trunc", *project_filter(project), *filters, "--format", "{{.ID}} {{.Image}} {{.State}}"
    )


def running_containers_argv(project: str, template: str) -> list[str]:
    return docker_argv("ps", *project_filter(project), "--format", template)


def publishing_argv(project: str, port: int) -> list[str]:
    """The project's containers that publish the host port."""
    return docker_argv("ps", "--quiet", *project_filter(project), "--filter", f"publish={port}")


def container_state_argv(container: str) -> list[str]:
    """The container's State as JSON (health included)."""
    return docker_argv("inspect", "--format", "{{json .State}}", container)


def copy_out_argv(container: str, source: str, target: str) -> list[str]:
    return docker_argv("cp", f"{container}:{source}", target)


def container_rm_argv(*containers: str, volumes: bool = False) -> list[str]:
    return docker_argv("rm", "--force", *["--volumes"] * volumes, *containers)


# invoke status: a row per container (service, state, health, image id, image name, id), tab-separated.
CONTAINER_ROWS_FORMAT = (
    '{{index .Config.Labels "com.docker.compose.service"}}\t{{.State.Status}}\t'
    "{{if .State.Health}}{{.State.Health.Status}}{{end}}\t{{.Image}}\t{{.Config.Image}}\t{{.ID}}"
)


def compose_containers_argv(project: str) -> list[str]:
    """Compose's containers of the project. Not swarm tasks: a release's image carries the compose labels of its
    build, and a container inherits its image's labels."""
    project_label = f"label=com.docker.compose.project={project}"
    return ["docker", "container", "ls", "--quiet", "--filter", project_label, "--filter", "is-task=false"]


def container_rows_argv(ids: Sequence[str]) -> list[str]:
    return ["docker", "container", "inspect", "--format", CONTAINER_ROWS_FORMAT, *ids]


def image_tag_ids_argv(images: Sequence[str]) -> list[str]:
    """Each image's first tag and id, tab-separated."""
    return ["docker", "image", "inspect", "--format", "{{index .RepoTags 0}}\t{{.Id}}", *images]


def cpuset_argv(containers: Sequence[str], cpus: str) -> list[str]:
    """Confine running containers to a CPU list (`0-2`): the bench keeps its load generator apart from them."""
    return ["docker", "update", "--cpuset-cpus", cpus, *containers]
