"""The shared core of the task suite: settings, command builders and the decisions behind them.

The front ends are `lifecycle.cli.tasks` (Invoke) and `lifecycle.cli.sessions` (Nox); a project's `tasks.py` and
`noxfile.py`, this checkout's included, are shims that import them. Modules that the engine bootstrap imports before
any virtual environment exists use the standard library only.
"""

__version__ = "0.1.0"  # the wheel's version (invoke wheel); an adopted project records which one it pinned
