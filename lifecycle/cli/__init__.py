"""The task front ends, in the package so that a project's tasks.py and noxfile.py are shims of a few lines:
`lifecycle.cli.tasks` (Invoke's namespace, `ns`) and `lifecycle.cli.sessions` (Nox sessions, registered on import).
"""
