"""A TCP relay that listens in one network namespace and connects in another (the cluster's registry door).

`python -m lifecycle.relay --listen 127.0.0.1:PORT --connect ADDR:PORT [--connect-netns /var/run/netns/NS]`:
the listening socket is bound in the namespace the process starts in; with `--connect-netns`, the process
then enters that namespace, so every outgoing connection starts there. This is how the host's loopback
and each worker's loopback reach the registry on the manager's address under one name
(`127.0.0.1:PORT/...`), which every engine treats as an insecure registry without any configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os

CLONE_NEWNET = 0x40000000
CHUNK = 65536


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def enter_netns(path: str) -> None:
    """setns(2) for the whole (single-threaded) process: sockets created afterwards live in that namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def serve(listen: tuple[str, int], target: tuple[str, int], connect_netns: str | None) -> None:
    async def relay(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(asyncio.open_connection(*target), 10)
        except (OSError, TimeoutError):
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(relay, *listen, reuse_address=True)
    if connect_netns:
        enter_netns(connect_netns)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=split_address, required=True, help="HOST:PORT to listen on, here")
    parser.add_argument("--connect", type=split_address, required=True, help="HOST:PORT to relay to")
    parser.add_argument("--connect-netns", help="Network namespace file to connect from. Default: this one.")
    options = parser.parse_args(argv)
    asyncio.run(serve(options.listen, options.connect, options.connect_netns))


if __name__ == "__main__":
    main()
