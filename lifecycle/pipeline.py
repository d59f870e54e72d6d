"""Threads for the streams of a backup and a restore: the work that leaves Python's lock (zlib, sha256, pipe
writes) runs beside the work that holds it (counting rows, scanning statements), so a dump moves at the speed of
the slowest step rather than the sum of them. Memory stays flat: each queue holds a few chunks at most.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

DEPTH = 4  # chunks waiting between two steps (each up to runner.CHUNK)
_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def in_background(chunks: Iterable[bytes], depth: int = DEPTH) -> Iterator[bytes]:
    """The same chunks, produced by a thread of their own: the producer's work overlaps the consumer's. An exception
    of the producer is raised here, where its chunk would have been; closing this iterator stops the producer."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Failed(error))
        finally:
            if close := getattr(chunks, "close", None):  # a generator stopped early runs its clean-up now
                close()

    thread = threading.Thread(target=produce, name="lifecycle-stream", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundWriter:
    """Hands chunks to `write` in a thread of its own (`with` it; leaving waits for every chunk to be written). An
    error of `write` is raised by the next `put`, or when the block ends."""

    def __init__(self, write: Callable[[bytes], object], depth: int = DEPTH) -> None:
        self._write, self._queue = write, queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="lifecycle-writer", daemon=True)

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def __exit__(self, kind, value, traceback) -> None:
        self._queue.put(_END)
        self._thread.join()
        if self._error is not None and value is None:
            raise self._error

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not _END:
            if self._error is None:
                try:
                    self._write(chunk)
                except BaseException as error:  # noqa: BLE001 - raised in the caller's thread
                    self._error = error
