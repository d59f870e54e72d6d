"""`nox -s bench`: how long the lifecycle takes, how big the images are and how fast prod serves.

A consumer of the library, beside the front ends (tasks.py, noxfile.py): it uses `lifecycle` and is not part of it,
so the wheel adopted projects carry (`invoke wheel`) holds the lifecycle alone.

Everything runs under isolated settings (`context.bench_settings`: image name and compose project
`bench-<checkout hash>`, a free APP_PORT, its own zip folder), so the user's images, stack and zip are
never touched; at the end `Bench.cleanup` removes what the run made (through `Local.clean`). Every
time is a median over `--runs` samples; the machine facts (cores, load average) are recorded next to
them, because numbers on a shared machine are noisy.

The package, one job per module:

| module | job |
| --- | --- |
| `main` | the entry point `run_bench`: sections in order, cleanup, evaluation, reports |
| `options` | `parse_options`: `--runs`, `--duration`, `--skip SECTION`, `--strict` |
| `context` | `Section` (the one shape of a section) and `Bench` (what every section gets) |
| `sections/` | one module per section, each with its `measure`, its `rows` and its targets |
| `load` | load generation: wrk (installed when missing), its output parsed, a Python fallback |
| `facts` | Docker facts: machine facts, image sizes and layers, container health timelines |
| `evaluate` | `Row`, the target helpers (`judged`, `median`, `fmt`), the loop over sections, notes kept |
| `report` | the terminal table and reports/bench.md |

How to add a section (e.g. `release`):

1. Write `bench/sections/release.py` with
   - `measure(bench: Bench) -> dict`: do the work through `bench` (`bench.suite`, `bench.run`,
     `bench.invoke(...)` to time a whole task as a user runs it, `bench.build_stage`, `bench.container`
     to name a container started outside the compose project, `bench.undo.append(fn)` for anything else
     the run must take down, so cleanup removes it also after a failure) and return plain,
     JSON-able measurements (lists of samples; `range(bench.runs)` of them for times);
   - `rows(measured: Mapping, results: Mapping) -> list[Row]`: the table rows of those measurements,
     `judged(key, metric, value, limit, why=...)` for a row with a target (PASS/MISS, the reason shown
     only on a MISS), `Row(key, metric, value)` for information; `results` has the other sections'
     measurements and `meta` (`load_hint(results)` for time misses);
   - `SECTION = Section("release", "one line: what it measures", measure, rows, TARGETS)`.
2. Add `release.SECTION` to `SECTIONS` in `bench/sections/__init__.py`, where it should run.
   `--skip release` and its rows in reports/bench.json and bench.md follow from there.
3. Test `rows` in tests/unit/test_bench.py with a hand-written measurement (a PASS and each MISS), and
   add its rows to the benchmark table in docs/bench.md after a real run.

A failing section does not end the run: its error becomes a row and the other sections still run.
Row keys are stable: the maintainer's notes in reports/bench.json are carried over by key.
"""
