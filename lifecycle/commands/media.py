"""argv builders of the media volume's helper container (lifecycle/media.py sequences them): a throwaway container
that runs lifecycle/media_volume.py against the volume, with no network and the fewest rights that do the job."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

MOUNT = "/var/lib/app/media"  # the volume in every app container (docker/Dockerfile makes it, owned by the app)
SCRIPT = Path(__file__).resolve().parent.parent / "media_volume.py"
# The restore's helper runs as root (so it works on any volume) with only the rights to give files to the app's UID.
ROOT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID")  # FSETID: chmod keeps the folders' setgid bit


def helper_image(settings: Mapping[str, str]) -> str:
    """The Python base image the app images are built on: on every machine that built one, offline or not."""
    return f"{settings['BASE_IMAGE']}:{settings['PY_VERSION']}-{settings['PY_BASE']}"


def helper_argv(
    settings: Mapping[str, str], volume: str, command: str, name: str = "", *, write: bool = False
) -> list[str]:
    """lifecycle/media_volume.py COMMAND in a throwaway container (no network) that mounts the volume at MOUNT:
    read-only as the app's user to read, as root with CHOWN/DAC_OVERRIDE/FOWNER/FSETID only to write."""
    mount = f"type=volume,source={volume},target={MOUNT}" + ("" if write else ",readonly")
    user = ["--user", "0:0", "--cap-drop", "ALL", *[f"--cap-add={cap}" for cap in ROOT_CAPS]] if write else [
        "--user", "10001:10001", "--cap-drop", "ALL"]  # fmt: skip
    stdin = ["--interactive"] if command == "unpack" else []
    return [
        "docker", "run", "--rm", *stdin, "--network", "none", *user, "--security-opt", "no-new-privileges:true",
        "--mount", mount, "--entrypoint", "python3", helper_image(settings),
        "-c", SCRIPT.read_text(encoding="utf-8"), command, MOUNT, *([name] if name else []),
    ]  # fmt: skip
