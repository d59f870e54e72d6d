"""The fast paths of db.backup and db.restore (issue 25, Speed): `docker exec` on the db container's id, the row
counter and the statement scan on whole chunks, the checks a restore makes while it loads, and the threads."""

from __future__ import annotations

import functools
import gzip
import hashlib
import random
import threading
from pathlib import Path

import pytest

from lifecycle import backup_file, dump_scan, pipeline
from lifecycle.backup_file import Manifest
from lifecycle.commands import dbclient
from lifecycle.commands.dbclient import DbTools
from lifecycle.errors import UserError
from lifecycle.runner import CHUNK
from lifecycle.settings import load_settings

SETTINGS = load_settings(root=Path("/checkout"), environ={"COMPOSE_PROJECT_NAME": "shop", "DB_IMAGE": "mysql:8.4"})
ON_ID = DbTools("app", "mariadb-dump", "mariadb", container="c0ffee")
ROOT_SH = ["sh", "-c", dbclient.AS_ROOT, "sh"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(dbclient.sql(SETTINGS, ON_ID, "SELECT 1"),
                     ["docker", "exec", "c0ffee", *ROOT_SH, "mariadb", "--batch", "--skip-column-names",
                      "--default-character-set=utf8mb4", "--execute=SELECT 1"],
                     id="a query: docker exec on the id, no stdin attached"),
        pytest.param(dbclient.dump(SETTINGS, ON_ID)[:7],
                     ["docker", "exec", "c0ffee", "sh", "-c", dbclient.DUMP_AS_ROOT, "sh"],
                     id="the dump: no stdin attached, its output through cat"),
        pytest.param(dbclient.load(SETTINGS, ON_ID, "app__restore"),
                     ["docker", "exec", "-i", "--env", "LIFECYCLE_LOAD_PASSWORD", "c0ffee", "sh", "-c",
                      dbclient.AS_USER, "sh", "mariadb", "lifecycle_restore", "--default-character-set=utf8mb4",
                      "--max-allowed-packet=1G", "--binary-mode", "app__restore"],
                     id="the load reads stdin: -i, its password by name only"),
        pytest.param(dbclient.script(SETTINGS, ON_ID),
                     ["docker", "exec", "-i", "c0ffee", *ROOT_SH, "mariadb", "--batch",
                      "--default-character-set=utf8mb4"], id="SQL on stdin: -i"),
        pytest.param(dbclient.probe(SETTINGS, "c0ffee")[:4], ["docker", "exec", "c0ffee", "sh"],
                     id="the probe on the id"),
        pytest.param(dbclient.probe(SETTINGS)[:3], ["docker", "compose", "--project-name"],
                     id="without an id: docker compose exec on the service"),
    ],
)  # fmt: skip
def test_commands_run_through_docker_exec_on_the_container_id(argv, expected):
    assert argv == expected


# ------------------------------------------------------------------------------------------- row counting
@pytest.mark.parametrize(
    ("values", "rows"),
    [
        pytest.param(b"(1,'a\\\\'),(2,'(')", 2, id="an escaped backslash before the closing quote"),
        pytest.param(b"(1,'it\\'s ('),(2,'x''y (')", 2, id="escaped and doubled quotes"),
        pytest.param(b"(1,NULL),\n(2,0x2829),\n(3,'')", 3, id="one row per line, hex, empty string"),
    ],
)
def test_rows_in_counts_the_parentheses_outside_strings(values, rows):
    assert dump_scan.rows_in(values) == rows


@functools.cache
def big_dump(rows: int, hostile_after: int | None = None) -> bytes:
    """A mariadb-dump 11 style dump of random text (it compresses little, so it spans several chunks)."""
    noise = random.Random(7)
    letters = b"abc();'\\ ,xyz"
    alphabet = bytes(letters[n % len(letters)] for n in range(256))  # a translate table: any byte to one of them
    lines = [b"CREATE TABLE `t` (\n  `id` int,\n  `s` text\n);\n", b"INSERT INTO `t` VALUES\n"]
    for n in range(rows):
        text = noise.randbytes(200).translate(alphabet).replace(b"\\", b"\\\\").replace(b"'", b"\\'")
        end = b";\n" if n == rows - 1 or n == hostile_after else b",\n"
        lines.append(b"(%d,'%s')%s" % (n, text, end))
        if n == hostile_after:
            lines.append(b"DROP TABLE app.live;\nINSERT INTO `t` VALUES\n")
    return b"".join([*lines, b"-- Dump completed on 2026-01-01\n"])


@pytest.mark.parametrize("chunk_size", [1 << 20, 4099], ids=["chunks of 1 MiB", "odd chunks"])
def test_the_row_counter_counts_a_dump_of_many_chunks(chunk_size):
    dump, counter = big_dump(12_000), dump_scan.RowCounter()
    for start in range(0, len(dump), chunk_size):
        counter.feed(dump[start : start + chunk_size])
    assert counter.finish() == {"t": 12_000} and counter.completed


# ------------------------------------------------------------------------------- checked while it loads
def backup_of(folder: Path, dump: bytes) -> tuple[Path, Manifest]:
    path = folder / "shop-20260101T000000000Z.sql.gz"
    data = gzip.compress(dump, compresslevel=1, mtime=0)
    path.write_bytes(data)
    manifest = Manifest(file=path.name, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                        created="2026-01-01T00:00:00+00:00", kind="manual", reason="by hand", project="shop",
                        database="app", server_image="x", server_version="11.8", dump_tool="mariadb-dump")  # fmt: skip
    backup_file.manifest_path(path).write_text(manifest.to_json())
    return path, manifest


def handed_out(path: Path, manifest: Manifest) -> tuple[bytes, str]:
    given = []
    try:
        for chunk in backup_file.checked_dump(path, manifest):
            given.append(chunk)
    except UserError as error:
        return b"".join(given), str(error)
    return b"".join(given), ""


def test_a_sound_dump_is_handed_out_whole(tmp_path):
    dump = big_dump(12_000)
    assert len(dump) > 2 * CHUNK
    assert handed_out(*backup_of(tmp_path, dump)) == (dump, "")


def test_a_statement_reaching_out_is_refused_before_a_client_receives_its_end(tmp_path):
    dump = big_dump(12_000, hostile_after=9_000)
    given, error = handed_out(*backup_of(tmp_path, dump))
    assert "reaches beyond the database it restores (a name in another database)" in error
    assert error.endswith("nothing was restored") and "\n" not in error
    assert len(given) >= CHUNK and b"app.live;" not in given  # loading had begun; the statement never left


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(lambda dump: dump[:-40], "unfinished dump", id="the dump stops early"),
        pytest.param(None, "does not match its manifest's sha256", id="the file changed after the first check"),
    ],
)
def test_the_last_chunk_waits_for_the_whole_file_checked(tmp_path, change, words):
    dump = big_dump(12_000)
    path, manifest = backup_of(tmp_path, change(dump) if change else dump)
    if change is None:
        backup_file.check_file(path)
        path.write_bytes(gzip.compress(dump.replace(b"xyz", b"xzy", 1), compresslevel=1, mtime=0))
    else:
        manifest = backup_file.check_file(path)
    given, error = handed_out(path, manifest)
    assert words in error and len(given) < len(dump) - 100


# ----------------------------------------------------------------------------------------------- threads
def test_in_background_hands_out_every_chunk_in_order_and_raises_the_producers_error():
    assert list(pipeline.in_background(iter([b"a", b"b", b"c"]), depth=1)) == [b"a", b"b", b"c"]

    def failing():
        yield b"a"
        raise ValueError("disk gone")

    taken = []
    with pytest.raises(ValueError, match="disk gone"):
        for chunk in pipeline.in_background(failing()):
            taken.append(chunk)
    assert taken == [b"a"]


def test_closing_in_background_early_stops_its_thread():
    stopped = threading.Event()

    def endless():
        try:
            while True:
                yield b"x"
        finally:
            stopped.set()

    chunks = pipeline.in_background(endless(), depth=2)
    assert next(chunks) == b"x"
    chunks.close()
    assert stopped.is_set()
    assert not [t for t in threading.enumerate() if t.name == "lifecycle-stream"]


def test_the_background_writer_writes_everything_and_raises_its_error():
    written = []
    with pipeline.BackgroundWriter(written.append, depth=1) as writer:
        for n in range(50):
            writer.put(b"%d" % n)
    assert written == [b"%d" % n for n in range(50)]

    def full(chunk):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"), pipeline.BackgroundWriter(full) as writer:
        for _ in range(20):
            writer.put(b"x")
