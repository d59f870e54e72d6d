"""HTTPS client for the cluster tests, run inside a node's network namespace (`nsenter --net=... python3 THIS ...`).

The proxies' certificate is self-signed (not verified) and the site answers only to its allowed host names, so every
request goes to a node's address with `Host: localhost`.

    python3 netns_client.py request ADDRESS PORT METHOD PATH [JSON_BODY]   -> prints the status, then the body
    python3 netns_client.py load PORT STOP_FILE ADDRESS...                -> prints {"ok": N, "failures": [...]}

`load` is bounded: 4 connections round robin over the addresses, until STOP_FILE exists, at most 600 s and
20000 requests.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import sys
import threading
import time

CONNECTIONS, MAX_SECONDS, MAX_REQUESTS = 4, 600, 20000


def request(address: str, port: int, method: str = "GET", path: str = "/health", body: str | None = None):
    context = ssl._create_unverified_context()  # the proxies' self-signed certificate
    connection = http.client.HTTPSConnection(address, port, context=context, timeout=10)
    try:
        headers = {"Host": "localhost", **({"Content-Type": "application/json"} if body else {})}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def load(port: int, stop_file: str, addresses: list[str]) -> dict:
    counts = {"ok": 0, "failures": []}
    lock = threading.Lock()
    end = time.monotonic() + MAX_SECONDS

    def work(offset: int) -> None:
        sent = offset
        while time.monotonic() < end and not os.path.exists(stop_file):
            sent += 1
            address = addresses[sent % len(addresses)]
            try:
                status, _ = request(address, port)
                failure = None if status == 200 else f"{address}: HTTP {status}"
            except OSError as error:
                failure = f"{address}: {error!r}"
            with lock:
                if failure:
                    counts["failures"].append(failure)
                else:
                    counts["ok"] += 1
                if counts["ok"] + len(counts["failures"]) >= MAX_REQUESTS:
                    return

    threads = [threading.Thread(target=work, args=(n,)) for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def main(argv: list[str]) -> None:
    if argv[0] == "request":
        status, body = request(argv[1], int(argv[2]), argv[3], argv[4], argv[5] if len(argv) > 5 else None)
        print(status)
        print(body)
    else:
        print(json.dumps(load(int(argv[1]), argv[2], argv[3:])))


if __name__ == "__main__":
    main(sys.argv[1:])
