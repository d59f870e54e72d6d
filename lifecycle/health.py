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
