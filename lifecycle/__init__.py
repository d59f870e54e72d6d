"""The shared core of the task suite: settings, command builders and the decisions behind them.

`tasks.py` (Invoke) and `noxfile.py` (Nox) are thin front ends over this package. Modules that the
engine bootstrap imports before any virtual environment exists use the standard library only.
"""

__version__ = "0.1.0"  # the wheel's version (invoke wheel); an adopted project records which one it pinned
