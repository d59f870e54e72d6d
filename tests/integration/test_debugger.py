"""`invoke up --stage dev --debug`: a real DAP client (the protocol's minimal handshake over the socket)
attaches to debugpy in the dev container, sets a breakpoint in a view, and an HTTP request to that view
stops there; after `continue` the request completes. `--wait` holds the server until a client attaches."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers.checkout import REPO_ROOT, IsolatedCheckout
from tests.helpers.engine import free_port, wait_for

pytestmark = pytest.mark.integration

VIEW = REPO_ROOT / "django_site" / "notes" / "views.py"
BREAK_AT = "notes = [note.as_json() for note in newest_notes()]"  # in notes_api, GET /api/notes
DAP_TIMEOUT = 60  # seconds for any one DAP answer


class DapClient:
    """Just enough of the Debug Adapter Protocol: framed JSON requests, and reading until a message matches."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DAP_TIMEOUT)
        self.buffer = b""
        self.seq = 0

    def send(self, command: str, **arguments) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def receive(self) -> dict:
        while b"\r\n\r\n" not in self.buffer:
            self.read_more()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = int(next(line for line in header.split(b"\r\n") if line.lower().startswith(b"content-length"))
                      .split(b":")[1])  # fmt: skip
        while len(self.buffer) < length:
            self.read_more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(body)

    def read_more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("debugpy closed the connection")
        self.buffer += chunk

    def until(self, kind: str, name: str, seq: int | None = None) -> dict:
        """The next response to request `seq` (kind "response", name = command) or event `name`."""
        for _ in range(1000):
            message = self.receive()
            key = "command" if kind == "response" else "event"
            if message["type"] == kind and message.get(key) == name and (seq is None or message["request_seq"] == seq):
                if kind == "response":
                    assert message["success"], message
                return message
        raise AssertionError(f"no {kind} {name} from debugpy")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def project(engine) -> Iterator[IsolatedCheckout]:
    """One isolated project for the module: its dev image and database volume are made once; each test runs its own
    `up --debug` (and `down`) on them."""
    checkout = IsolatedCheckout.new()
    try:
        yield checkout
    finally:
        checkout.remove()


@contextmanager
def dev_under_debugger(project: IsolatedCheckout, *flags: str):
    debug_port = free_port()
    try:
        done = project.invoke_combined("up", "--stage", "dev", "--debug", *flags, env={"DEBUG_PORT": str(debug_port)})
        assert done.returncode == 0, done.stdout[-4000:]
        assert f"debugpy listens on 127.0.0.1:{debug_port}" in done.stdout
        yield project, debug_port
    finally:
        project.invoke("down")


def initialized_client(port: int) -> DapClient | None:
    """A client past `initialize`, or None while debugpy does not listen yet (the entrypoint first waits for
    the database and migrates; until then docker's port proxy accepts and drops the connection)."""
    try:
        client = DapClient(port)
    except OSError:  # refused: nothing listens on the published port yet
        return None
    try:
        request = client.send("initialize", clientID="it", adapterID="debugpy", pathFormat="path",
                              linesStartAt1=True, columnsStartAt1=True)  # fmt: skip
        client.until("response", "initialize", request)
        return client
    except (ConnectionError, AssertionError, TimeoutError):
        client.close()
        return None


def attach_with_breakpoint(client: DapClient, line: int) -> None:
    attach = client.send("attach", justMyCode=True, pathMappings=[{"localRoot": str(REPO_ROOT), "remoteRoot": "/app"}])
    client.until("event", "initialized")
    placed = client.until("response", "setBreakpoints", client.send(
        "setBreakpoints", source={"path": str(VIEW)}, breakpoints=[{"line": line}]))  # fmt: skip
    assert placed["body"]["breakpoints"][0]["line"] == line
    client.until("response", "configurationDone", client.send("configurationDone"))
    client.until("response", "attach", attach)


def get_in_background(url: str) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def fetch() -> None:
        with urllib.request.urlopen(url, timeout=DAP_TIMEOUT * 2) as response:
            result["status"] = response.status

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize("flags", [(), ("--wait",)], ids=["--debug", "--debug --wait"])
def test_a_breakpoint_in_a_view_stops_an_http_request(project, flags):
    line = VIEW.read_text().splitlines().index(f"    {BREAK_AT}") + 1
    with dev_under_debugger(project, *flags) as (project, debug_port):
        client = wait_for(lambda: initialized_client(debug_port), timeout=120, what="debugpy to answer")
        try:
            attach_with_breakpoint(client, line)
            api = f"http://127.0.0.1:{project.port}/api/notes"
            if flags:  # the server starts only now that a client is attached
                wait_for(lambda: project.health("dev") == "healthy" or None, timeout=120, what="dev healthy")
            thread, result = get_in_background(api)
            stopped = client.until("event", "stopped")
            assert stopped["body"]["reason"] == "breakpoint", stopped
            frames = client.until("response", "stackTrace", client.send(
                "stackTrace", threadId=stopped["body"]["threadId"], levels=1))  # fmt: skip
            top = frames["body"]["stackFrames"][0]
            assert (top["source"]["path"], top["line"]) == (str(VIEW), line)
            assert "status" not in result, "the request finished while stopped at the breakpoint"
            client.until("response", "continue", client.send("continue", threadId=stopped["body"]["threadId"]))
            thread.join(DAP_TIMEOUT)
            assert result.get("status") == 200
            client.send("disconnect", terminateDebuggee=False)
        finally:
            client.close()
