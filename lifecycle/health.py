"""How a container's `docker inspect` State reads: healthy, unhealthy, exited or still waiting; and for the db,
whether the app's login is refused (a volume initialised with other credentials)."""

from __future__ import annotations

import json


def container_state(state_json: str) -> dict:
    """A container's `docker inspect` State as a dict ({} when there was no answer)."""
    try:
        state = json.loads(state_json or "{}")
    except json.JSONDecodeError:
        return {}
    return state if isinstance(state, dict) else {}


def container_verdict(state_json: str) -> str:
    """A container's `docker inspect` State -> healthy, unhealthy, exited (or dead) or waiting."""
    state = container_state(state_json)
    if state.get("Status") in ("exited", "dead"):
        return "exited"
    health = (state.get("Health") or {}).get("Status")
    return health if health in ("healthy", "unhealthy") else "waiting"


def db_verdict(state_json: str) -> str:
    """The db container's `docker inspect` State -> healthy, denied (the app's login refused), exited or waiting."""
    verdict = container_verdict(state_json)
    if verdict in ("healthy", "exited"):
        return verdict
    last = ((container_state(state_json).get("Health") or {}).get("Log") or [{}])[-1]
    return "denied" if "Access denied" in (last.get("Output") or "") else "waiting"


DB_DENIED = (
    "the database refuses the app's login (Access denied): its volume was initialised with another DB_PASSWORD "
    "(or DB_USER); put the old value back in .env, or start over with invoke down --volumes (it backs the data "
    "up, then deletes it)"
)


def swarm_grace(start_period: int, interval: int, retries: int) -> int:
    """Seconds a new swarm replica has to pass its health check once: failures count after the start period,
    and `retries` failures in a row, one per interval, make it unhealthy (then Swarm rolls the release back)."""
    return start_period + retries * interval


def swarm_timing_refusal(
    start_period: int, interval: int, retries: int, update_monitor: int, timeout: int
) -> str | None:
    """Why the swarm app's health timing (APP_HEALTH_*, APP_UPDATE_MONITOR) cannot work, one line; None when it can."""
    unhealthy_after = interval * retries
    if update_monitor <= unhealthy_after:
        return (
            f"APP_UPDATE_MONITOR={update_monitor} must be above APP_HEALTH_INTERVAL x APP_HEALTH_RETRIES "
            f"({unhealthy_after} s), or a replica that fails after passing once goes unnoticed; raise it"
        )
    needed = swarm_grace(start_period, interval, retries) + update_monitor
    if timeout <= needed:
        return (
            f"DEPLOY_TIMEOUT={timeout} must be above the health grace plus APP_UPDATE_MONITOR ({needed} s), "
            "or the deploy gives up before Swarm decides; raise it"
        )
    return None
