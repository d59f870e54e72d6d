"""The one place that builds Docker Swarm command lines (swarm, stack, service, secret), and reads their answers.

Every builder returns an argument list; `lifecycle.deploy` runs them through a `Runner`. The parsers turn
the engine's `--format` output into plain values, so the decisions that use them need no engine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UserError

# This machine's kernel has no IPVS, so the swarm listens and advertises on loopback; a real cluster
# passes its own address (see docs/deploy.md).
LOCAL_ADDRESS = "127.0.0.1"
STACK_FILE = "docker/stack.yaml"
DB_FILE = "docker/stack.db.yaml"
MIGRATE_FILE = "docker/stack.migrate.yaml"
JOBS_FILE = "docker/stack.jobs.yaml"  # the scheduler, when jobs are declared
PROXY_CONFIG = "docker/proxy/haproxy.cfg"  # the one compose mounts too
SECRETS = ("DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD")
DIGEST_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._:/-]*@sha256:[0-9a-f]{64}$")


# ------------------------------------------------------------------------------------------ the swarm
def init(address: str = LOCAL_ADDRESS) -> list[str]:
    return ["docker", "swarm", "init", "--advertise-addr", address, "--listen-addr", f"{address}:2377"]


def leave() -> list[str]:
    return ["docker", "swarm", "leave", "--force"]


def standalone_containers() -> list[str]:
    """Probe: the running containers that are not swarm tasks, `ID NETWORK,NETWORK...` per line."""
    return ["docker", "ps", "--no-trunc", "--filter", "is-task=false", "--format", "{{.ID}} {{.Networks}}"]


DEFAULT_NETWORKS = {"bridge", "host", "none"}  # no embedded DNS: nothing for `swarm leave` to drop


def on_user_networks(listing: str) -> list[str]:
    """The probe's answer, as a decision: the containers attached to a user-defined network. Leaving swarm mode
    drops their names from the engine's DNS (moby/moby#45144) and may drop their published ports (#47392);
    a restart registers them again."""
    found = []
    for line in listing.splitlines():
        container, _, networks = line.partition(" ")
        if container and set(networks.split(",")) - DEFAULT_NETWORKS - {""}:
            found.append(container)
    return found


def restart(containers: Sequence[str]) -> list[str]:
    return ["docker", "restart", *containers]


def swarm_state() -> list[str]:
    """Probe: `active true NODE_ID NODES` on a manager, `inactive false  0` outside swarm mode."""
    state = "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}} {{.Swarm.Nodes}}"
    return ["docker", "info", "--format", state]


def leave_refusal(state: str) -> str:
    """The probe's answer, as a decision: why `swarm.leave` must not force this node out ("" when it may).
    A manager forced out of a swarm of several nodes takes the swarm's quorum (and its stacks) with it."""
    node_state, manager, _, nodes = [*state.split(), "", "", "", ""][:4]
    if node_state == "active" and manager == "true" and nodes.isdigit() and int(nodes) > 1:
        return (
            f"this engine manages a swarm of {nodes} nodes, which leaving would break; "
            "move its work away and demote it (docker node demote) or remove the other nodes first"
        )
    return ""


def label_node(label: str, node: str) -> list[str]:
    """Mark a node as the database's (stack.db.yaml places the db on `node.labels.LABEL == true`)."""
    return ["docker", "node", "update", "--label-add", f"{label}=true", node]


def unlabel_node(label: str, node: str) -> list[str]:
    return ["docker", "node", "update", "--label-rm", label, node]


def nodes_labelled(label: str) -> list[str]:
    return ["docker", "node", "ls", "--quiet", "--filter", f"node.label={label}=true"]


def require_manager(state: str) -> str:
    """The probe's answer, as a decision: stack commands only work on a swarm manager. Returns the node id."""
    node_state, manager, node = [*state.split(), "", "", ""][:3]
    if node_state != "active":
        raise UserError(f"the engine is not in swarm mode ({node_state or 'no answer'}); run: invoke swarm.init")
    if manager != "true":
        raise UserError("this engine is a swarm worker; run the deploy on a manager node (docker node ls there)")
    return node


# ------------------------------------------------------------------------------------------ the stack
def stack_deploy(stack: str, files: Sequence[Path]) -> list[str]:
    """Deploy (or update) the services in files; never prunes, so services not in files stay untouched."""
    flags = [part for file in files for part in ("--compose-file", str(file))]
    return ["docker", "stack", "deploy", "--with-registry-auth", "--resolve-image", "never", *flags, stack]


def stack_rm(stack: str) -> list[str]:
    return ["docker", "stack", "rm", stack]


def stack_services(stack: str) -> list[str]:
    return ["docker", "stack", "services", "--format", "{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}", stack]


def stack_tasks(stack: str) -> list[str]:
    """Running and recent tasks with the image each runs (the digest is part of it)."""
    return [
        "docker",
        "stack",
        "ps",
        "--no-trunc",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}}\t{{.Image}}\t{{.CurrentState}}\t{{.Error}}",
        stack,
    ]


def stack_networks(stack: str) -> list[str]:
    """Probe: the stack's networks, which `docker stack rm` removes last."""
    return stack_objects("network", stack)


def stack_objects(kind: str, stack: str) -> list[str]:
    """Probe: the stack's networks, secrets, configs or volumes (kind), by the namespace label the stack gives them."""
    return ["docker", kind, "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack}"]


def stack_containers(stack: str) -> list[str]:
    """Probe: this node's containers of the stack's tasks, stopped ones too (they go a little after `stack rm`)."""
    return ["docker", "container", "ls", "--all", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack}"]


def objects_rm(kind: str, *names: str) -> list[str]:
    """Remove secrets, configs or volumes (kind) by name or id."""
    return ["docker", kind, "rm", *names]


def service_name(stack: str, service: str) -> str:
    return f"{stack}_{service}"


def service_inspect(name: str) -> list[str]:
    return ["docker", "service", "inspect", "--format", "{{json .}}", name]


def service_tasks(name: str) -> list[str]:
    """Every task of a service, newest first: id, desired state, current state, image, error."""
    return [
        "docker",
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.ID}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Image}}\t{{.Error}}",
        name,
    ]


def container_logs(container: str, tail: int = 20) -> list[str]:
    return ["docker", "container", "logs", "--tail", str(tail), container]


def service_rm(name: str) -> list[str]:
    return ["docker", "service", "rm", name]


def stopped_task_containers(service: str) -> list[str]:
    """Probe: this node's exited containers of a service (Swarm leaves those of a finished job behind)."""
    filters = ["--filter", f"label=com.docker.swarm.service.name={service}", "--filter", "status=exited"]
    return ["docker", "container", "ls", "--all", "--quiet", *filters]


def container_rm(*containers: str) -> list[str]:
    return ["docker", "container", "rm", *containers]


def service_rollback(name: str) -> list[str]:
    return ["docker", "service", "rollback", "--detach", name]


def service_scale(name: str, replicas: int) -> list[str]:
    return ["docker", "service", "scale", "--detach", f"{name}={replicas}"]


def pull(image: str) -> list[str]:
    """Probe and fetch: fails when the registry no longer has the image."""
    return ["docker", "pull", "--quiet", image]


# --------------------------------------------------------------------------------------------- secrets
def content_name(stack: str, variable: str, value: str | bytes, salt: bytes | None = None) -> str:
    """Swarm secrets and configs are immutable: a name from the content makes a changed value a new one (rotation).
    A secret's name is keyed with the stack's salt (HMAC-SHA256): the same value keeps its name from deploy to
    deploy, but nobody without the salt can confirm a guessed password from the name. Configs (not secret) need none.
    """
    data = value.encode() if isinstance(value, str) else value
    if salt is None:
        digest = hashlib.sha256(data).hexdigest()[:12]
    else:
        digest = hmac.new(salt, b"\0".join([stack.encode(), variable.encode(), data]), hashlib.sha256).hexdigest()[:12]
    return f"{stack}_{variable.lower()}_{digest}"


SALT_FILE = Path(".lifecycle") / "secret-names.salt"
SALT_BYTES = 32


def secret_salt(root: Path, create: bool = True) -> bytes:
    """The checkout's salt for secret names: made once (0600, never through a link), then read back, so names stay
    the same across deploys of the same value. Without `create` (a dry run) a missing salt is a placeholder."""
    path = root / SALT_FILE
    if create and not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another deploy made it just now: read theirs
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(secrets.token_hex(SALT_BYTES) + "\n")
                file.flush()
                os.fsync(file.fileno())
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if create:
            raise
        return b"dry-run"
    except OSError:
        raise UserError(f"{SALT_FILE} is not a plain file; remove it (new secret names follow)") from None
    with os.fdopen(descriptor, encoding="ascii", errors="replace") as file:
        text = file.read().strip()
    if len(text) != 2 * SALT_BYTES or any(c not in "0123456789abcdef" for c in text):
        raise UserError(f"{SALT_FILE} is damaged; remove it (the next deploy makes new secret names)")
    return bytes.fromhex(text)


def secret_inspect(name: str) -> list[str]:
    return ["docker", "secret", "inspect", "--format", "{{.ID}}", name]


def secret_create(name: str, file: Path, stack: str) -> list[str]:
    """From a file, never the command line; labelled with the stack for `docker secret ls`."""
    return ["docker", "secret", "create", "--label", f"com.docker.stack.namespace={stack}", name, str(file)]


# --------------------------------------------------------------------------------------------- parsers
def check_digest_reference(image: str) -> str:
    if not DIGEST_REFERENCE.match(image):
        raise UserError(f"release image {image!r} is not name@sha256:<digest>; run: invoke release --stage prod")
    return image


def short(image: str) -> str:
    """`name@sha256:0123456789ab` for messages."""
    name, _, digest = image.partition("@")
    return f"{name}@{digest[:19]}" if digest else image


@dataclass(frozen=True)
class ServiceState:
    """What `docker service inspect` says about one service, reduced to what a deploy decides on."""

    image: str
    previous_image: str
    replicas: int
    update_state: str  # "" (never updated), updating, completed, paused, rollback_started, rollback_completed, ...
    update_message: str
    update_started: str  # when the last update began: tells a new update from the one before
    update_completed: str  # when it (or Swarm's rollback of it) completed; "" while it runs
    template: str  # the task template as JSON: when a deploy changes it, Swarm runs a rolling update

    @classmethod
    def parse(cls, inspect_json: str) -> ServiceState:
        data = json.loads(inspect_json)
        data = data[0] if isinstance(data, list) else data
        spec = data.get("Spec", {})
        previous = data.get("PreviousSpec") or {}
        update = data.get("UpdateStatus") or {}
        return cls(
            image=spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""),
            previous_image=previous.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""),
            replicas=int(spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0)),
            update_state=update.get("State", ""),
            update_message=update.get("Message", ""),
            update_started=update.get("StartedAt", ""),
            update_completed=update.get("CompletedAt", ""),
            template=json.dumps(spec.get("TaskTemplate", {}), sort_keys=True),
        )


@dataclass(frozen=True)
class Task:
    id: str
    desired: str
    state: str  # "Running 5 seconds ago", "Complete 2 seconds ago", "Failed 1 second ago", ...
    image: str
    error: str = ""  # why Swarm ended the task: "task: non-zero exit (1)", "unhealthy container", ...

    @property
    def status(self) -> str:
        return self.state.split(" ", 1)[0].lower()


def all_running(tasks: Sequence[Task]) -> bool:
    """Every task Swarm wants running runs, and there is at least one: for a global service (the proxy), one on
    every node, so each node serves once this holds; any task still starting means wait."""
    wanted = [task for task in tasks if task.desired == "Running"]
    return bool(wanted) and all(task.status == "running" for task in wanted)


def parse_tasks(text: str) -> list[Task]:
    tasks = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) in (4, 5):
            tasks.append(Task(*(part.strip() for part in parts)))
    return tasks


# The deploy lock (lifecycle/deploylock.py): a swarm config only one `docker config create` can make.
DEPLOY_LOCK_LABEL = "lifecycle.deploy-lock"


def deploy_lock_name(stack: str) -> str:
    return f"{stack}_deploy-lock"


def lock_create(name: str, file: Path, stack: str) -> list[str]:
    """Take the lock: fails when the config exists (another deploy holds it)."""
    labels = ["--label", f"com.docker.stack.namespace={stack}", "--label", f"{DEPLOY_LOCK_LABEL}=true"]
    return ["docker", "config", "create", *labels, name, str(file)]


def lock_inspect(name: str) -> list[str]:
    """Probe: the lock's config as JSON (its Spec.Data is the holder, base64), or a failure when nobody holds it."""
    return ["docker", "config", "inspect", "--format", "{{json .}}", name]


def lock_remove(name: str) -> list[str]:
    return ["docker", "config", "rm", name]


def service_logs(service: str) -> list[str]:
    """Every line of a service's tasks, timestamped (invoke logs --request)."""
    return ["docker", "service", "logs", "--no-trunc", "--timestamps", service]


def task_containers(stack: str, service: str) -> list[str]:
    """Probe: the ids of this node's running containers of the stack's SERVICE (its tasks here)."""
    label = f"label=com.docker.swarm.service.name={stack}_{service}"
    return ["docker", "container", "ls", "--quiet", "--filter", label]


def task_exec(container: str, command: Sequence[str]) -> list[str]:
    """COMMAND in a running task's container (its environment and secrets, none on the command line)."""
    return ["docker", "exec", container, *command]


def stack_service_rows(stack: str) -> list[str]:
    """Probe: NAME, REPLICAS (running/wanted) and IMAGE of each service of the stack, tab-separated (invoke status)."""
    filters = ["--filter", f"label=com.docker.stack.namespace={stack}"]
    return ["docker", "service", "ls", *filters, "--format", "{{.Name}}\t{{.Replicas}}\t{{.Image}}"]


def task_nodes(name: str) -> list[str]:
    """Probe: the node of each task of the service NAME that Swarm wants running."""
    return ["docker", "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}", name]


def not_here(name: str, nodes: str) -> str:
    """The probe's answer, as a decision: the line for a command that needs a task of NAME on this node."""
    found = sorted({node for node in nodes.split() if node})
    if found:
        return f"{name} runs on node {', '.join(found)}, not on this one; run this there (nothing was done)"
    return f"no task of {name} runs: is the stack deployed? invoke deploy --stage prod (nothing was done)"


def service_images(stack: str, services: Sequence[str]) -> list[str]:
    """Probe: `NAME\\tIMAGE` of each of the stack's SERVICES that exists (the rest fail the command, not the lines)."""
    names = [service_name(stack, service) for service in services]
    return ["docker", "service", "inspect", "--format", "{{.Spec.Name}}\t{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            *names]  # fmt: skip
