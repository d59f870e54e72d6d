"""Invoke tasks of the container lifecycle suite: `invoke --list`, `invoke --help TASK`.

A shim, written by `invoke adopt` (template/): the tasks live in the suite's package, lifecycle.cli.tasks.
"""

from lifecycle.cli.tasks import ns  # noqa: F401 - Invoke takes the collection named ns
