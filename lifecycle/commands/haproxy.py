"""The proxy's command lines: one runtime API command inside a proxy container (maintenance mode), and the probes
that find this checkout's running proxies (compose's prod stage, the swarm stack's tasks on this node).
"""

from __future__ import annotations

from lifecycle.commands import swarm

RUNTIME_API = ("127.0.0.1", 9999)  # haproxy.cfg: `stats socket ipv4@127.0.0.1:9999 level admin`
# bash's /dev/tcp (the proxy images have bash, no socat): one command in, the answer out until HAProxy closes.
CLI_SCRIPT = 'exec 3<>"/dev/tcp/$1/$2" && printf "%s\\n" "$3" >&3 && cat <&3'


def runtime_argv(container: str, command: str) -> list[str]:
    """One runtime API command, run inside the proxy's container (its loopback is the only way in)."""
    host, port = RUNTIME_API
    return ["docker", "exec", container, "bash", "-c", CLI_SCRIPT, "cli", host, str(port), command]


def compose_proxies(project: str) -> list[str]:
    """Probe: the running proxy container of the compose project's prod stage."""
    filters = [
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        "label=com.docker.compose.service=proxy",
    ]
    return ["docker", "container", "ls", "--quiet", *filters]


def swarm_proxies(stack: str) -> list[str]:
    """Probe: this node's running proxy tasks of the stack (the proxy is global: one per node)."""
    return swarm.task_containers(stack, "proxy")
