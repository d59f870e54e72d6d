"""bench's pure parts: wrk output -> numbers, results -> PASS/MISS rows, rows -> table and markdown."""

from __future__ import annotations

import time

import pytest

from bench.context import BENCH_ZIP_DIR, Bench, Section, TimedRunner, append_line, restored
from bench.evaluate import Row, carry_notes, evaluate, judged
from bench.facts import MB, added_over_base, first_healthy, parse_docker_time, parse_history, timeline
from bench.load import parse_wrk, pinning, pinning_note, to_ms, wrk_argv
from bench.options import parse_options
from bench.report import render_markdown, render_table
from bench.sections import SECTIONS, TARGETS
from bench.sections.pipuv import parse_pip_uv
from bench.sections.serve import CONCURRENCY, serving_summary
from lifecycle.errors import UserError
from lifecycle.runner import Result, Terminated
from lifecycle.stages import NAMES, PROD, STAGES
from tests.helpers.recording import RecordingRunner

# ------------------------------------------------------------------------------------------------ wrk output

CLEAN = """\
Running 10s test @ http://127.0.0.1:8000/health
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    2.01ms  30.00ms   80.00%
    Req/Sec     1.50k   200.00     2.00k    70.00%
  Latency Distribution
     50%    4.80ms
     75%    6.00ms
     90%    7.50ms
     99%   12.00ms
  30000 requests in 10.00s, 5.00MB read
Requests/sec:   3000.00
Transfer/sec:    500.00KB
"""

MICROSECONDS_AND_ERRORS = """\
Running 10s test @ http://127.0.0.1:8000/api/notes
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   635.91us    0.89ms  12.92ms   93.69%
    Req/Sec     1.60k    80.07     1.70k    86.54%
  Latency Distribution
     50%  250.00us
     75%  491.00us
     90%  700.00us
     99%    1.20s
  16001 requests in 10.01s, 17.76MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:   1598.50
Transfer/sec:      1.78MB
"""

MINUTES = """\
Running 1m test @ http://127.0.0.1:8000/
  2 threads and 32 connections
  Latency Distribution
     50%    1.00m
     75%    1.00m
     90%    1.00m
     99%    1.50m
  12 requests in 1.00m, 1.00KB read
  Socket errors: connect 0, read 0, write 0, timeout 40
Requests/sec:      0.20
Transfer/sec:      17.00B
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            CLEAN,
            {
                "requests": 30000,
                "seconds": 10.0,
                "rps": 3000.0,
                "p50_ms": 4.8,
                "p75_ms": 6.0,
                "p90_ms": 7.5,
                "p99_ms": 12.0,
                "non_2xx": 0,
                "errors": 0,
            },
        ),
        (
            MICROSECONDS_AND_ERRORS,
            {
                "requests": 16001,
                "seconds": 10.01,
                "rps": 1598.5,
                "p50_ms": 0.25,
                "p75_ms": 0.491,
                "p90_ms": 0.7,
                "p99_ms": 1200.0,
                "non_2xx": 5,
                "errors": 15,
            },
        ),
        (MINUTES, {"requests": 12, "seconds": 60.0, "rps": 0.2, "p50_ms": 60000.0, "p99_ms": 90000.0, "errors": 40}),
    ],
    ids=["clean", "microseconds-and-errors", "minutes-and-timeouts"],
)
def test_parse_wrk(output, expected):
    result = parse_wrk(output)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key


def test_parse_wrk_keeps_the_socket_error_kinds():
    assert parse_wrk(MICROSECONDS_AND_ERRORS)["socket"] == {"connect": 1, "read": 2, "write": 3, "timeout": 4}


def test_parse_wrk_refuses_output_without_results():
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk("unable to connect to 127.0.0.1:8000 Connection refused\n")


@pytest.mark.parametrize(
    ("text", "ms"), [("635.91us", 0.63591), ("1.20ms", 1.2), ("2.00s", 2000.0), ("1.00m", 60000.0)]
)
def test_to_ms(text, ms):
    assert to_ms(text) == pytest.approx(ms)


def test_to_ms_refuses_other_text():
    with pytest.raises(ValueError):
        to_ms("12 parsecs")


def test_wrk_argv_sends_the_header_and_caps_threads_at_the_connections():
    argv = wrk_argv("http://127.0.0.1:9/health", 1, 10, [("X-Forwarded-Proto", "https")])
    assert argv == [
        "wrk",
        "--latency",
        "-t",
        "1",
        "-c",
        "1",
        "-d",
        "10s",
        "-H",
        "X-Forwarded-Proto: https",
        "http://127.0.0.1:9/health",
    ]


# ------------------------------------------------------------------------------------------- sizes and times


def test_added_over_base():
    assert added_over_base(250 * MB, 163 * MB) == 87 * MB
    assert added_over_base(None, 163 * MB) is None


def test_parse_history_drops_the_base_layers_and_sorts_biggest_first():
    text = (
        "0\tENV APP_STAGE=prod\n40000000\tCOPY /opt/venv /opt/venv # buildkit\n5000\tRUN collectstatic\n"
        "160000000\t/bin/sh -c #(nop) ADD file:rootfs\n"
    )
    assert parse_history(text, base_layers=1) == [
        (40000000, "COPY /opt/venv /opt/venv # buildkit"),
        (5000, "RUN collectstatic"),
        (0, "ENV APP_STAGE=prod"),
    ]


def test_parse_docker_time():
    assert parse_docker_time("1970-01-01T00:00:10.500000000Z") == pytest.approx(10.5)
    assert parse_docker_time("1970-01-01T01:00:10+01:00") == pytest.approx(10.0)
    assert parse_docker_time("0001-01-01T00:00:00Z") is None


def test_timeline_from_container_states():
    state = {
        "StartedAt": "1970-01-01T00:00:12.000000000Z",
        "Health": {
            "Log": [
                {"End": "1970-01-01T00:00:13Z", "ExitCode": 1},
                {"End": "1970-01-01T00:00:15.25Z", "ExitCode": 0},
                {"End": "1970-01-01T00:00:17Z", "ExitCode": 0},
            ]
        },
    }
    assert first_healthy(state) == pytest.approx(15.25)
    assert timeline(10.0, {"prod": state}) == {"prod_started": 2.0, "prod_healthy": 5.25}
    assert timeline(10.0, {"db": {}}) == {"db_started": None, "db_healthy": None}
    created = {**state, "CreatedAt": "1970-01-01T00:00:11.5Z"}
    assert timeline(10.0, {"prod": created}) == {"prod_created": 1.5, "prod_started": 2.0, "prod_healthy": 5.25}


def test_parse_pip_uv():
    out = "noise\nBENCH pip 100.0 130.5\nBENCH uv 200.0 203.0 210.25\n"
    assert parse_pip_uv(out) == {"pip": 30.5, "uv_bootstrap": 3.0, "uv_install": 7.25}
    with pytest.raises(ValueError):
        parse_pip_uv("BENCH pip 1 2\n")


def test_serving_summary_takes_medians_and_sums_errors():
    samples = [
        {"rps": 100.0, "p50_ms": 1.0, "p99_ms": 9.0, "errors": 1},
        {"rps": 300.0, "p50_ms": 3.0, "p99_ms": 7.0, "errors": 0},
        {"rps": 200.0, "p50_ms": 2.0, "p99_ms": 8.0, "errors": 2},
    ]
    assert serving_summary(samples) == {"rps": 200.0, "p50_ms": 2.0, "p99_ms": 8.0, "errors": 3}


# ------------------------------------------------------------------------------------------------ evaluation


def wrk(rps, p99, errors=0, p50=1.0):
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}


def rebuild(noop=0.2, code=0.8, noop_compose=0.1, code_compose=0.5):
    """The rebuild section's measurements: the whole `invoke build` and the compose build alone."""
    return {
        "noop": {"whole": [noop], "compose": [noop_compose]},
        "code_only": {"whole": [code], "compose": [code_compose]},
        "requirements": [30.0],
        "invoke_version": [0.25, 0.31, 0.22],
    }


def results(**changes):
    """A small, all-PASS result set; `changes` replace whole sections."""
    base = {
        "meta": {"nproc": 2, "loadavg_start": "0.50 0.40 0.30"},
        "cold": {stage: [100.0, 120.0, 110.0] for stage in NAMES},
        "rebuild": rebuild(),
        "zip": {"seconds": [0.05], "files": 31, "bytes": 8764},
        "images": {
            "base": {"name": "lifecycle/python:3.13-trixie", "bytes": 163 * MB},
            "stages": {
                "dev": {"bytes": 687 * MB, "gcc": "/usr/bin/gcc"},
                "stage": {"bytes": 200 * MB, "gcc": ""},
                "prod": {"bytes": 210 * MB, "gcc": "", "top_layers": [[45 * MB, "COPY /opt/venv"]]},
            },
        },
        "qa": {"seconds": [25.0], "status": [0], "changed": [4.1, 4.6, 3.9], "changed_status": [0, 0, 0]},
        "devloop": {"save_served_seconds": [0.8, 0.7, 0.9], "lock_rebuilt_seconds": [25.0, 12.0, 11.0]},
        "up": {
            "healthy_seconds": [6.0],
            "stop_seconds": [1.0],
            "timeline": [{}],
            "code_change_seconds": [3.5],
            "code_change_timeline": [{"prod_started": 1.0, "prod_healthy": 3.4}],
        },
        "serve": {
            "workers": "2",
            "precheck": {"/health": 200},
            "site": {"/health": {str(c): [wrk(800.0, 30.0)] for c in CONCURRENCY}},
            "ceiling": {str(c): [wrk(1000.0, 5.0)] for c in CONCURRENCY},
        },
        "pipuv": {"pip": [40.0], "uv_bootstrap": [3.0], "uv_install": [12.0]},
    }
    return {**base, **changes}


def rows_of(results):
    return evaluate(results, SECTIONS)


def by_key(rows):
    return {row.key: row for row in rows}


def test_all_targets_met():
    rows = by_key(rows_of(results()))
    for key in (
        "noop_prod",
        "code_only_prod",
        "code_only_ratio",
        "size_prod",
        "toolchain_stage",
        "toolchain_prod",
        "qa",
        "qa_changed",
        "save_served",
        "lock_rebuilt",
        "healthy",
        "stop",
        "code_change_up",
        "errors_/health",
        "p99_/health",
        "ceiling_/health",
    ):
        assert rows[key].status == "PASS", key
    assert rows["cold_build_prod"].value == "110.0 s"  # the median
    assert rows["toolchain_dev"].status == "info"
    assert rows["size_prod"].value == "210.0 MB (+47.0 MB over lifecycle/python:3.13-trixie)"
    assert rows["uv"].value == "12.0 s (+ 3.0 s = 15.0 s)"
    assert rows["save_served"].value == "0.80 s" and rows["lock_rebuilt"].value == "12.0 s"  # the medians


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"rebuild": rebuild(noop=0.35)}, "noop_prod"),
        ({"rebuild": rebuild(code=1.1)}, "code_only_prod"),
        ({"cold": {"prod": [12.0]}, "rebuild": rebuild(code=0.8)}, "code_only_ratio"),  # 6.7 % of the cold build
        ({"images": {"base": {"name": "b", "bytes": 100 * MB}, "stages": {"prod": {"bytes": 161 * MB}}}}, "size_prod"),
        ({"images": {"base": {"bytes": 1}, "stages": {"stage": {"bytes": 2, "gcc": "/bin/gcc"}}}}, "toolchain_stage"),
        ({"qa": {"seconds": [31.0], "status": [0]}}, "qa"),
        ({"qa": {"seconds": [10.0], "status": [1]}}, "qa"),  # fast but failing is no pass
        ({"qa": {"seconds": [25.0], "status": [0], "changed": [24.0], "changed_status": [0]}}, "qa_changed"),
        ({"qa": {"seconds": [25.0], "status": [0], "changed": [3.0], "changed_status": [1]}}, "qa_changed"),
        ({"up": {"healthy_seconds": [10.5], "stop_seconds": [1.0], "timeline": [{"db_healthy": 4.0}]}}, "healthy"),
        ({"up": {"healthy_seconds": [5.0], "stop_seconds": [14.9], "grace_period_s": 15}}, "stop"),
        ({"up": {"healthy_seconds": [5.0], "stop_seconds": [1.0], "code_change_seconds": [4.5]}}, "code_change_up"),
    ],
    ids=[
        "noop",
        "code-only-seconds",
        "code-only-ratio",
        "prod-size",
        "gcc-in-stage",
        "qa-slow",
        "qa-failing",
        "qa-changed-slow",
        "qa-changed-failing",
        "healthy",
        "stop",
        "code-change-up",
    ],
)
def test_a_missed_target_is_a_miss_with_a_reason(changes, key):
    row = by_key(rows_of(results(**changes)))[key]
    assert row.status == "MISS"
    assert row.why


def test_stop_near_the_grace_period_says_sigterm_is_lost():
    row = by_key(rows_of(results(up={"healthy_seconds": [5.0], "stop_seconds": [14.9], "grace_period_s": 15})))["stop"]
    assert "SIGTERM" in row.why


@pytest.mark.parametrize(
    ("site", "ceiling", "precheck", "missed"),
    [
        ([wrk(800.0, 30.0, errors=1)], [wrk(1000.0, 5.0)], 200, {"errors_/health"}),
        ([wrk(800.0, 30.0)], [wrk(1000.0, 5.0)], 301, {"errors_/health"}),  # a redirect is not a pass
        ([wrk(800.0, 51.0)], [wrk(1000.0, 5.0)], 200, {"p99_/health"}),
        ([wrk(499.0, 30.0)], [wrk(1000.0, 5.0)], 200, {"ceiling_/health"}),
    ],
    ids=["errors", "redirected", "p99", "ceiling"],
)
def test_serving_targets(site, ceiling, precheck, missed):
    serving = {
        "workers": "2",
        "precheck": {"/health": precheck},
        "site": {"/health": {str(c): site for c in CONCURRENCY}},
        "ceiling": {str(c): ceiling for c in CONCURRENCY},
    }
    rows = [row for row in rows_of(results(serve=serving)) if row.key.endswith("/health")]
    assert {row.key for row in rows if row.status == "MISS"} == missed


def test_serving_value_shows_the_ratio_to_the_ceiling():
    assert by_key(rows_of(results()))["serve_/health_16"].value == "800 req/s (80 % of 1000), p50 1.0 ms, p99 30.0 ms"


def test_missing_sections_give_no_rows_and_errors_are_listed():
    rows = rows_of({"errors": {"qa": "command failed"}})
    assert [(row.key, row.status, row.why) for row in rows] == [("error_qa", "n/a", "command failed")]


def test_unmeasured_value_is_not_a_pass():
    assert by_key(rows_of(results(qa={"seconds": [], "status": []})))["qa"].status == "n/a"


def test_carry_notes_keeps_the_maintainers_words_by_key():
    rows = [Row("qa", "nox -s qa", "40 s", "≤ 30 s", "MISS"), Row("stop", "docker stop", "1 s", "≤ 2 s", "PASS")]
    carry_notes(rows, [{"key": "qa", "note": "db init dominates; see #12"}, {"key": "gone", "note": "x"}])
    assert [row.note for row in rows] == ["db init dominates; see #12", ""]


# ------------------------------------------------------------------------------------------------- rendering

SMALL = [
    Row("noop_prod", "no-op rebuild prod", "1.0 s", "≤ 2 s", "PASS"),
    Row("qa", "nox -s qa (images built)", "40.0 s", "≤ 30 s", "MISS", "fresh database | init"),
    Row("zip", "invoke zip", "0.05 s", note=""),
]


def test_render_table_aligns_columns_and_gives_the_reason_of_a_miss():
    lines = render_table(SMALL).splitlines()
    assert lines[0].split() == ["Metric", "Value", "Target", "Result", "Why", "/", "what", "it", "would", "take"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].index("1.0 s") == lines[3].index("40.0 s") == lines[0].index("Value")
    assert "MISS" in lines[3] and lines[3].rstrip().endswith("fresh database | init")
    assert lines[4].rstrip().endswith("info")


def test_render_table_cuts_long_reasons():
    row = Row("x", "m", "v", "t", "MISS", "y" * 200)
    assert render_table([row], why_width=40).splitlines()[2].endswith("…")


def test_render_markdown():
    text = render_markdown(
        SMALL, {"date": "2026-01-01T00:00:00+00:00", "nproc": 2, "docker": "20.10.24", "notes": ["one", "two"]}
    )
    assert "- **nproc:** 2" in text and "- **Docker:** 20.10.24" in text and "- **Notes:** one; two" in text
    assert "Targets: 1 PASS, 1 MISS." in text
    assert "| nox -s qa (images built) | 40.0 s | ≤ 30 s | MISS | fresh database \\| init |" in text
    assert text.count("\n| ") == 4  # header and three rows


# --------------------------------------------------------------------------------------------- files and options


def test_restored_puts_the_file_back_byte_for_byte(tmp_path):
    path = tmp_path / "wsgi.py"
    path.write_bytes(b"x = 1\r\nno newline at end")
    before = path.stat()
    with pytest.raises(RuntimeError), restored(path):
        append_line(path, "# bench")
        assert path.read_bytes() == b"x = 1\r\nno newline at end\n# bench\n"
        raise RuntimeError("the build failed")
    assert path.read_bytes() == b"x = 1\r\nno newline at end"
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_restored_removes_a_file_that_did_not_exist(tmp_path):
    path = tmp_path / ".lifecycle" / "releases.jsonl"
    path.parent.mkdir()
    with restored(path):
        path.write_text('{"reference": "bench"}\n')
    assert not path.exists()


def test_parse_options():
    options = parse_options(["--runs", "1", "--skip", "pipuv", "--skip", "qa"])
    assert (options.runs, options.duration, options.skip, options.strict) == (1, 10, ["pipuv", "qa"], False)
    with pytest.raises(SystemExit):
        parse_options(["--runs", "0"])


# ------------------------------------------------------------------------------- sections: the one shape


def test_every_section_has_one_name_an_option_and_its_targets_in_the_table():
    names = [section.name for section in SECTIONS]
    assert len(set(names)) == len(names)
    names_in_order = ["zip", "cold", "rebuild", "images", "qa", "devloop", "up", "serve", "proxy", "observe", "release"]
    names_in_order += ["trust"]
    names_in_order += ["deploy"]
    names_in_order += ["backup", "pipuv"]
    assert names == [*names_in_order, "cluster", "adopt"]  # run order
    assert parse_options(["--skip", names[-1]]).skip == [names[-1]]
    assert TARGETS["noop_s"] == 0.3 and TARGETS["code_only_s"] == 1.0 and TARGETS["code_change_up_s"] == 4.0


def test_a_new_section_plugs_in_with_its_rows_and_is_silent_when_not_measured():
    def rows(measured, results):
        return [judged("restore_s", "db.restore", measured["seconds"][0], 5.0, why="the dump is big")]

    release = Section("restore", "db.restore of a 1 GB dump", lambda bench: {"seconds": [7.0]}, rows, {"restore_s": 5})
    measured = by_key(evaluate(results(restore={"seconds": [7.0]}), [*SECTIONS, release]))
    assert (measured["restore_s"].status, measured["restore_s"].why) == ("MISS", "the dump is big")
    assert "restore_s" not in by_key(evaluate(results(), [*SECTIONS, release]))


@pytest.mark.parametrize(
    ("value", "at_least", "status", "why"),
    [(0.25, False, "PASS", ""), (0.35, False, "MISS", "slow"), (None, False, "n/a", ""), (0.2, True, "MISS", "slow")],
)
def test_judged(value, at_least, status, why):
    row = judged("k", "metric", value, 0.3, at_least=at_least, digits=2, why="slow")
    assert (row.status, row.why, row.target) == (status, why, "≥ 0.3 s" if at_least else "≤ 0.3 s")


# ------------------------------------------------------------------ builds and up: the whole command decides


def test_rebuilds_are_judged_by_the_whole_command_and_show_the_compose_build_apart():
    rows = by_key(rows_of(results(rebuild=rebuild(noop=0.66, noop_compose=0.2, code=2.38, code_compose=1.4))))
    assert (rows["noop_prod"].value, rows["noop_prod"].status) == ("0.66 s", "MISS")
    assert rows["noop_prod"].target == "≤ 0.3 s"
    assert rows["noop_prod_compose"].value == "0.20 s" and rows["noop_prod_compose"].status == "info"
    assert rows["invoke_version"].value == "0.25 s", "the start-up every task pays, beside the build's time"
    assert "the compose build alone takes 0.20 s" in rows["noop_prod"].why
    assert (rows["code_only_prod"].value, rows["code_only_prod"].status) == ("2.38 s", "MISS")
    assert rows["code_only_prod"].target == "≤ 1 s"
    assert rows["code_only_prod_compose"].value == "1.40 s"


def test_a_fast_compose_build_does_not_pass_a_slow_command():
    rows = by_key(rows_of(results(rebuild=rebuild(noop=0.5, noop_compose=0.05))))
    assert rows["noop_prod"].status == "MISS"


def test_code_ratio_without_a_cold_build_is_not_judged():
    assert by_key(rows_of(results(cold={})))["code_only_ratio"].status == "n/a"


def test_up_after_a_code_change_says_when_the_new_container_started_and_turned_healthy():
    up = {
        "healthy_seconds": [5.0],
        "stop_seconds": [1.0],
        "code_change_seconds": [6.1],
        "code_change_timeline": [{"prod_created": 2.1, "prod_started": 2.4, "prod_healthy": 5.9}],
    }
    row = by_key(rows_of(results(up=up)))["code_change_up"]
    assert (row.value, row.target, row.status) == ("6.1 s", "≤ 4 s", "MISS")
    assert "created at 2.1 s" in row.why and "started at 2.4 s" in row.why and "healthy at 5.9 s" in row.why


# ---------------------------------------------------------------------------------- timing and cleanup


def test_timed_runner_remembers_each_commands_time_in_order():
    inner = RecordingRunner()
    timer = TimedRunner(inner)
    timer(["docker", "compose", "build", "prod"], warn=True)
    timer(["docker", "image", "inspect", "prod"])
    timer(["docker", "compose", "build", "prod"])
    assert [argv for argv, _ in timer.timings] == [
        ("docker", "compose", "build", "prod"),
        ("docker", "image", "inspect", "prod"),
        ("docker", "compose", "build", "prod"),
    ]
    assert all(0 <= seconds < 5 for _, seconds in timer.timings)
    assert inner.calls == [
        ["docker", "compose", "build", "prod"],
        ["docker", "image", "inspect", "prod"],
        ["docker", "compose", "build", "prod"],
    ]


def test_timed_runner_sums_the_chosen_commands_after_a_mark():
    timer = TimedRunner(RecordingRunner())
    build, inspect = ("docker", "compose", "build", "prod"), ("docker", "image", "inspect", "prod")
    timer.timings = [(build, 9.0), (inspect, 0.1), (build, 1.25), (inspect, 0.1), (build, 0.5)]
    assert timer.seconds_since(1, {build}) == 1.75
    assert timer.seconds_since(5, {build}) == 0  # nothing built: the build key said it was up to date
    assert timer.seconds_since(0, {inspect}) == 0.2


def test_cleanup_removes_the_bench_project_and_images_through_the_suite_and_keeps_the_users_files(make_settings):
    settings = make_settings()
    for path in (settings.root / "reports" / "junit.xml", settings.root / "docker" / "certs" / "proxy.crt"):
        path.parent.mkdir(parents=True)
        path.write_text("the user's")
    untagged = Result(0, "0\n")
    run = RecordingRunner({("docker", "image", "inspect", "--format", "{{len .RepoTags}}"): untagged})
    bench = Bench(settings, run, runs=1, duration=1)
    owner = ("docker", "image", "inspect", "--format", '{{index .Config.Labels "io.lifecycle.compose-project"}}')
    run.answers[owner] = Result(0, f"{bench.name}\n")  # clean removes only the images its project built
    bench.image_ids.add("sha256:old")
    ceiling = bench.container("ceiling")
    (settings.root / BENCH_ZIP_DIR).mkdir(parents=True)
    bench.cleanup()
    assert ceiling.startswith("bench-") and ["docker", "rm", "--force", ceiling] in run.calls
    down = next(argv for argv in run.calls if "down" in argv)
    assert down[down.index("--project-name") + 1] == bench.name and "--volumes" in down
    removed = next(argv for argv in run.calls if argv[:3] == ["docker", "image", "rm"])
    sbom_images = {f"{bench.name}:{stage.sbom}" for stage in STAGES}  # each image once
    assert sorted(removed[3:]) == sorted([f"{bench.name}:{stage}" for stage in NAMES] + sorted(sbom_images))
    assert ["docker", "image", "rm", "sha256:old"] in run.calls
    assert (settings.root / "reports" / "junit.xml").read_text() == "the user's"
    assert (settings.root / "docker" / "certs" / "proxy.crt").is_file()
    assert not (settings.root / BENCH_ZIP_DIR).exists()


CLUSTER = {
    "seconds": 200.0,
    "status": 0,
    "up_seconds": 10.4,
    "converge_3_nodes_seconds": 12.9,
    "node_down_failed_requests": 0,
    "node_down_connection_errors": 1,
    "node_down_requests": 3571,
    "reschedule_seconds": 18.2,
    "rejoin_seconds": 1.2,
}


@pytest.mark.parametrize(
    ("changes", "misses"),
    [
        ({}, []),
        ({"converge_3_nodes_seconds": 45.0}, ["cluster_converge"]),
        ({"node_down_failed_requests": 9}, ["cluster_failed_requests"]),
        ({"reschedule_seconds": 75.0}, ["cluster_reschedule"]),
        ({"status": 1}, ["cluster_converge", "cluster_failed_requests", "cluster_reschedule"]),
    ],
    ids=["all-pass", "slow-converge", "failed-requests", "slow-reschedule", "failing-run"],
)
def test_cluster_rows(changes, misses):
    rows = by_key(rows_of(results(cluster={**CLUSTER, **changes})))
    judged_keys = ["cluster_converge", "cluster_failed_requests", "cluster_reschedule"]
    assert [key for key in judged_keys if rows[key].status == "MISS"] == misses
    assert [key for key in judged_keys if rows[key].status == "PASS"] == [k for k in judged_keys if k not in misses]
    assert rows["cluster_failed_requests"].target == "≤ 4"
    assert rows["cluster_up"].value == "10.4 s"


# ------------------------------------------------------------------------------------ release and proxy


@pytest.mark.parametrize(
    ("code_bytes", "status"),
    [pytest.param(1_400_000, "PASS", id="code-layers-only"), pytest.param(30_000_000, "MISS", id="more-than-code")],
)
def test_release_push_rows(code_bytes, status):
    pushes = {"first": {"seconds": 21.7, "bytes": 80_400_000, "blobs": 14},
              "code_only": {"seconds": 2.0, "bytes": code_bytes, "blobs": 4}}  # fmt: skip
    rows = by_key(rows_of(results(release=pushes)))
    assert rows["push_first"].value == "21.7 s, 80.4 MB in 14 blobs"
    assert rows["push_code_only_share"].status == status


@pytest.mark.parametrize(
    ("sign", "verify", "release_status", "deploy_status"),
    [
        pytest.param(0.95, 0.31, "PASS", "PASS", id="within-both"),
        pytest.param(1.5, 0.31, "MISS", "PASS", id="release-over-2s"),
        pytest.param(0.95, 0.5, "PASS", "MISS", id="deploy-over-1s"),
    ],
)
def test_trust_rows_add_up_the_medians_of_each_step(sign, verify, release_status, deploy_status):
    samples = {"sign": [sign, 9.0, sign], "provenance": [0.66], "verify_signature": [verify],
               "verify_provenance": [0.62]}  # fmt: skip
    rows = by_key(rows_of(results(trust=samples)))
    assert rows["sign"].value == f"{sign:.2f} s"
    assert rows["release_added"].value == f"{sign + 0.66:.2f} s" and rows["release_added"].status == release_status
    assert rows["deploy_added"].value == f"{verify + 0.62:.2f} s" and rows["deploy_added"].status == deploy_status
    assert rows["deploy_added"].target == "≤ 1 s" and rows["release_added"].target == "≤ 2 s"


def test_trust_rows_without_a_step_are_not_judged():
    rows = by_key(rows_of(results(trust={"sign": [0.9]})))
    assert rows["release_added"].status == "n/a"


@pytest.mark.parametrize(
    ("proxied_rps", "status"), [pytest.param(900.0, "PASS", id="90-percent"), pytest.param(700.0, "MISS", id="70")]
)
def test_proxy_rows(proxied_rps, status):
    endpoints = {"/health": {"direct": [wrk(1000.0, 20.0)], "proxied": [wrk(proxied_rps, 25.0)]}}
    rows = by_key(rows_of(results(proxy={"pinning": "not pinned: 2 CPUs", "endpoints": endpoints})))
    assert rows["proxy_share_/health"].status == status
    assert rows["proxy_/health"].value.startswith(f"{proxied_rps:.0f} vs 1000 req/s direct")
    assert rows["proxy_pinning"].value == "not pinned: 2 CPUs"


def test_proxy_rows_with_failed_requests_are_not_judged():
    endpoints = {"/health": {"direct": [wrk(1000.0, 20.0)], "proxied": [wrk(3000.0, 25.0, errors=600)]}}
    rows = by_key(rows_of(results(proxy={"pinning": "not pinned: 2 CPUs", "endpoints": endpoints})))
    assert rows["proxy_share_/health"].status == "n/a" and "600 vs 0 errors" in rows["proxy_/health"].value


@pytest.mark.parametrize(
    ("cpus", "generator", "stack"),
    [(1, None, None), (2, None, None), (3, None, None), (4, "3", "0-2"), (8, "6-7", "0-5"), (16, "12-15", "0-11")],
)
def test_pinning_keeps_a_quarter_for_the_load_generator_from_4_cpus(cpus, generator, stack):
    found = pinning(cpus)
    assert (found and (found.generator, found.stack)) == ((generator, stack) if generator else None)
    note = pinning_note(found, cpus)
    assert note.startswith("not pinned") if generator is None else f"wrk on CPUs {generator}" in note


def test_pinned_wrk_runs_under_taskset_with_a_thread_per_cpu():
    argv = wrk_argv("http://127.0.0.1:9/health", 16, 10, [], pinning(8))
    assert argv[:3] == ["taskset", "-c", "6-7"] and argv[argv.index("-t") + 1] == "2"


def observed(on_rps, off_rps, status_s=(0.9, 1.1, 1.0)):
    """The observe section's measurements: each variant's runs per endpoint, `invoke status`'s times."""
    return {
        "on": {"/health": [wrk(rps, 20.0) for rps in on_rps], "/api/notes": [wrk(300.0, 60.0)]},
        "off": {"/health": [wrk(rps, 19.0) for rps in off_rps], "/api/notes": [wrk(310.0, 58.0)]},
        "status": list(status_s),
        "status_probes": [0.4, 0.5, 0.45],
        "status_exit": [1, 1, 1],
        "metrics_bytes": 15819,
    }


@pytest.mark.parametrize(
    ("on_rps", "off_rps", "cost", "status"),
    [
        pytest.param((970.0, 990.0, 980.0), (1000.0, 1000.0, 1000.0), "2.0 %", "PASS", id="2 percent"),
        pytest.param((1010.0,), (1000.0,), "-1.0 %", "PASS", id="on faster: noise"),
        pytest.param((900.0, 910.0, 890.0), (1000.0, 1100.0, 950.0), "10.0 %", "MISS", id="10 percent"),
    ],
)
def test_observe_rows_judge_the_cost_of_metrics_and_json_logs(on_rps, off_rps, cost, status):
    rows = by_key(rows_of(results(observe=observed(on_rps, off_rps))))
    assert (rows["observe_cost_/health"].value, rows["observe_cost_/health"].status) == (cost, status)
    assert rows["observe_cost_/health"].target == "≤ 5 %"
    assert rows["observe_/api/notes"].value.startswith("300 req/s vs 310 req/s")
    assert rows["observe_cost_/api/notes"].value == "3.2 %"
    if status == "MISS":
        assert "disagree by up to 8 %" in rows["observe_cost_/health"].why  # off: 1000, 1100, 950


@pytest.mark.parametrize(
    ("status_s", "verdict"), [pytest.param((0.9, 1.1, 1.0), "PASS", id="1 s"), pytest.param((2.5,), "MISS", id="2.5")]
)
def test_observe_rows_time_invoke_status_whole_against_2_s(status_s, verdict):
    rows = by_key(rows_of(results(observe=observed((1000.0,), (1000.0,), status_s))))
    assert (rows["status_time"].status, rows["status_time"].target) == (verdict, "≤ 2 s")
    assert rows["status_probes"].value == "0.45 s"
    if verdict == "MISS":
        assert rows["status_time"].why.startswith("probes 0.5 s of it; the rest is Python and invoke starting")


def test_bench_settings_isolate_the_https_and_registry_ports_too(make_settings):
    from bench.context import bench_settings

    settings = make_settings(APP_PORT="8000", HTTPS_PORT="8443", REGISTRY_PORT="5000", REGISTRY="registry.example.com")
    isolated = bench_settings(settings)
    assert isolated["REGISTRY"] == "" and isolated.registry.startswith("127.0.0.1:")
    assert {isolated["APP_PORT"], isolated["HTTPS_PORT"], isolated["REGISTRY_PORT"]}.isdisjoint(
        {"8000", "8443", "5000"}
    )


# -------------------------------------------------------------------------------------------------- deploy
def load_sample(seconds=40.0, failed=0, timeouts=0, status=0, **extra):
    return {"seconds": seconds, "status": status, "requests": 5000, "failed": failed, "timeouts": timeouts, **extra}


def deploys(**changes):
    measured = {
        "first_seconds": 55.2,
        "rolling": [load_sample(41.0), load_sample(43.0), load_sample(45.0)],
        "unchanged": [{"seconds": 9.0, "running": 5, "restarted": 0}],
        "rollback": [load_sample(50.0, status=1, rolled_back=True, swarm_seconds=41.5)],
    }
    return {**measured, **changes}


DEPLOY_JUDGED = [
    "deploy_rolling_failed_requests",
    "deploy_rollback",
    "deploy_rollback_failed_requests",
    "deploy_unchanged_restarted_tasks",
]


@pytest.mark.parametrize(
    ("changes", "misses"),
    [
        ({}, []),
        ({"rolling": [load_sample(failed=3, timeouts=1)]}, ["deploy_rolling_failed_requests"]),
        ({"rollback": [load_sample(90.0, status=1, rolled_back=True, swarm_seconds=75.0)]}, ["deploy_rollback"]),
        ({"rollback": [load_sample(30.0, status=0, rolled_back=False, swarm_seconds=None)]}, ["deploy_rollback"]),
        (
            {"rollback": [load_sample(50.0, failed=2, status=1, rolled_back=True, swarm_seconds=40.0)]},
            ["deploy_rollback_failed_requests"],
        ),
        ({"unchanged": [{"seconds": 30.0, "running": 5, "restarted": 3}]}, ["deploy_unchanged_restarted_tasks"]),
    ],
    ids=["all-pass", "failed-requests", "slow-rollback", "not-rolled-back", "rollback-failures", "restarted"],
)
def test_deploy_rows(changes, misses):
    rows = by_key(rows_of(results(deploy=deploys(**changes))))
    assert [key for key in DEPLOY_JUDGED if rows[key].status == "MISS"] == misses
    assert [key for key in DEPLOY_JUDGED if rows[key].status == "PASS"] == [k for k in DEPLOY_JUDGED if k not in misses]
    assert all(rows[key].why for key in misses)


def test_deploy_rows_show_medians_and_the_targets():
    rows = by_key(rows_of(results(deploy=deploys())))
    assert rows["deploy_rolling"].value == "43.0 s" and rows["deploy_first"].value == "55.2 s"
    assert rows["deploy_rollback"].value == "41.5 s (invoke deploy until it said so: 50.0 s)"
    assert rows["deploy_rollback"].target == "≤ 45 s" and rows["deploy_unchanged_restarted_tasks"].target == "≤ 0"


@pytest.mark.parametrize(
    ("update", "seconds"),
    [
        pytest.param(("rollback_completed", "2026-01-01T10:00:00.5Z", "2026-01-01T10:01:12Z"), 71.5, id="rolled-back"),
        pytest.param(("completed", "2026-01-01T10:00:00Z", "2026-01-01T10:00:30Z"), None, id="no-rollback"),
        pytest.param(("rollback_started", "2026-01-01T10:00:00Z", ""), None, id="still-rolling-back"),
    ],
)
def test_rollback_seconds_is_swarms_own_time_from_update_start_to_rollback_completed(update, seconds):
    from bench.sections.deploy import rollback_seconds
    from lifecycle.commands.swarm import ServiceState

    state, started, completed = update
    assert rollback_seconds(ServiceState("i", "p", 3, state, "", started, completed, "{}")) == seconds
    assert rollback_seconds(None) is None


def test_deploy_failed_requests_sum_every_run_and_name_the_timeouts():
    rolling = [load_sample(failed=1, timeouts=1), load_sample(failed=2)]
    row = by_key(rows_of(results(deploy=deploys(rolling=rolling))))["deploy_rolling_failed_requests"]
    assert row.value == "3" and "of 10000; 1 of them wrk's 2 s timeouts" in row.metric


SWARM_PROBE = ("docker", "info", "--format")
LABELLED = ("docker", "node", "ls", "--quiet", "--filter")


class SwarmEngine(RecordingRunner):
    """An engine whose swarm probe answers `active` once `docker swarm init` ran."""

    def __call__(self, argv, **options):
        if list(argv[:3]) == ["docker", "swarm", "init"]:
            self.answers[SWARM_PROBE] = Result(0, "active true n1")
        return super().__call__(argv, **options)


@pytest.mark.parametrize(
    ("state", "labelled", "init", "after"),
    [
        pytest.param("inactive false ", "", True, ["docker", "swarm", "leave", "--force"], id="not-in-swarm-mode"),
        pytest.param("active true n1", "n1\n", False, None, id="a-labelled-swarm"),
        pytest.param(
            "active true n1",
            "",
            False,
            ["docker", "node", "update", "--label-rm", "lifecycle.db", "n1"],
            id="a-swarm-without-the-label",
        ),
    ],
)
def test_deploy_section_leaves_the_engine_in_the_swarm_state_it_found(make_settings, state, labelled, init, after):
    from bench.sections.deploy import on_swarm
    from lifecycle.deploy import Deployer

    gwbridge = ("docker", "network", "inspect", "docker_gwbridge")  # swarm init makes it: gone again only if made
    run = SwarmEngine({SWARM_PROBE: Result(0, state), LABELLED: Result(0, labelled), gwbridge: Result(int(init))})
    bench = Bench(make_settings(), run, runs=1, duration=1)
    on_swarm(bench, Deployer(bench.ctx))
    assert (["docker", "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"]
            in run.calls) == init  # fmt: skip
    assert any(argv[:4] == ["docker", "node", "update", "--label-add"] for argv in run.calls) == (labelled == "")
    before = len(run.calls)
    run.answers[("docker", "secret", "ls")] = Result(0, "s1\ns2\n")
    bench.undo[-1]()
    cleanup = run.calls[before:]
    assert ["docker", "stack", "rm", bench.name] in cleanup
    assert ["docker", "secret", "rm", "s1", "s2"] in cleanup
    assert any(argv[:2] == ["docker", "compose"] and "down" in argv for argv in cleanup)  # the registry
    swarm_changes = [
        argv for argv in cleanup if argv[:3] in (["docker", "swarm", "leave"], ["docker", "node", "update"])
    ]
    assert swarm_changes == ([after] if after else [])
    assert (["docker", "network", "rm", "docker_gwbridge"] in cleanup) == init


def test_the_bench_puts_the_users_sbom_reports_and_records_back(make_settings, monkeypatch, tmp_path):
    """Its builds (another project's images) write the checkout's SBOM files; the user's next build must not
    take them for its own."""
    from bench import main
    from lifecycle import sbom

    settings = make_settings()
    report, record = sbom.report_path(settings.root, "prod"), sbom.Record.path(settings.root, "prod")
    for path in (report, record):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the user's")

    def overwrite(bench):
        report.write_text("the bench's")
        record.write_text("the bench's")
        sbom.report_path(settings.root, "dev").write_text("the bench's")
        return {}

    monkeypatch.setattr(main, "SECTIONS", [Section("fake", "writes the SBOM files", overwrite, lambda m, r: [])])
    main.run_bench(settings, RecordingRunner(), 1, tmp_path / "bench-reports", skip=("serve",))
    assert report.read_text() == "the user's" and record.read_text() == "the user's"
    assert not sbom.report_path(settings.root, "dev").exists()  # it was not there before


def _section_that(ends_with: BaseException | None) -> Section:
    def measure(bench: Bench) -> dict:
        bench.undo.append(lambda: bench.run(["first-started"]))
        bench.undo.append(lambda: bench.run(["last-started"]))
        if ends_with is not None:
            raise ends_with
        return {"value": 1}

    return Section("probe", "a section that starts two things", measure, lambda measured, results: [])


@pytest.mark.parametrize(
    "ends_with",
    [None, UserError("it failed"), KeyboardInterrupt(), Terminated()],
    ids=["success", "failure", "ctrl-c", "sigterm"],
)
def test_a_section_takes_down_what_it_started_however_it_ends(make_settings, ends_with):
    """Before the next section starts: its own undo actions, newest first, and the compose project's containers;
    an interrupt then goes on (the run's cleanup follows), a failure becomes a row."""
    run = RecordingRunner()
    bench = Bench(make_settings(), run, runs=1, duration=1)
    bench.undo.append(lambda: run(["from-an-earlier-section"]))
    results: dict = {}
    if isinstance(ends_with, KeyboardInterrupt):
        with pytest.raises(type(ends_with)):
            bench.measure(_section_that(ends_with), results)
    else:
        bench.measure(_section_that(ends_with), results)
    ran = [argv for argv in run.calls if argv[0] != "docker"]
    assert ran == [["last-started"], ["first-started"]]
    down = run.calls[-1]
    assert "down" in down and down[down.index("--project-name") + 1] == bench.name and "--volumes" not in down
    assert len(bench.undo) == 1  # the earlier section's, for the run's cleanup
    assert results.get("probe") == ({"value": 1} if ends_with is None else None)
    assert ("probe" in results.get("errors", {})) == isinstance(ends_with, UserError)


def test_sections_with_a_stack_of_their_own_never_share_its_name_volume_or_port(make_settings):
    """The deploy section's swarm stack held the database files the backup section's database then could not lock:
    each gets its own project/stack name (so `<name>_db-data`) and, for the stack's proxy, its own HTTPS port."""
    bench = Bench(make_settings(), RecordingRunner(), runs=1, duration=1)
    main = bench.settings
    names = {main.project_name}
    with bench.own_project("deploy", ports=("HTTPS_PORT",)) as deploy:
        assert bench.settings is deploy and bench.process_env()["COMPOSE_PROJECT_NAME"] == deploy.project_name
        # builds stay the bench's own: one image, whatever the section's project
        assert deploy["HTTPS_PORT"] != main["HTTPS_PORT"] and bench.suite.settings.image(PROD) == main.image(
            PROD
        )  # builds
        names.add(deploy.project_name)
    with bench.own_project("backup") as backup:
        names.add(backup.project_name)
    assert len(names) == 3 and bench.settings is main and bench.env == main.env
    assert deploy.project_name == f"{bench.name}-deploy" and backup.project_name == f"{bench.name}-backup"


def test_sigterm_raises_terminated_once_and_lets_the_cleanup_finish():
    import os
    import signal

    from lifecycle.runner import interrupt_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    try:
        interrupt_on_sigterm()
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs before sleep returns
        os.kill(os.getpid(), signal.SIGTERM)  # during the cleanup: reported, not raised
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGTERM, before)


def test_backup_rows_add_the_physical_method_beside_the_logical_one_when_measured():
    from bench.sections import backup

    measured = {"data_bytes": 200_000_000, "backup_s": [4.0], "plain_backup_s": [2.0], "restore_s": [8.0],
                "plain_restore_s": [4.0], "backup_peak_kb": [1024], "restore_peak_kb": [1024]}  # fmt: skip
    assert [row.key for row in backup.rows(measured, {})][-1] == "db_restore_peak"  # a MySQL image: none
    rows = backup.rows({**measured, "physical_backup_s": [3.0], "physical_restore_s": [5.0]}, {})
    assert [(row.key, row.value) for row in rows[-2:]] == [
        ("db_physical_backup_s", "3.0 s vs logical 4.0 s"),
        ("db_physical_restore_s", "5.0 s vs logical 8.0 s"),
    ]


def test_parse_options_backup_mb():
    assert parse_options([]).backup_mb == 200
    assert parse_options(["--backup-mb", "2000"]).backup_mb == 2000
    with pytest.raises(SystemExit):
        parse_options(["--backup-mb", "0"])
