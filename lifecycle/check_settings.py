"""Import a Django settings module as Django would, and say in one line why it does not import.

`invoke adopt` runs this file alone with the project's Python (which has the project's dependencies, not the
suite's): `python check_settings.py FOLDER MODULE`, FOLDER being manage.py's. Standard library only.
Exit 0: it imports. Exit 2: it does not; stdout is the exception's last traceback line (Django's own message).
Exit 3: a third-party module is not installed in that Python (the images install it); stdout names it.
"""

from __future__ import annotations

import importlib
import os
import sys


def main(folder: str, module: str) -> int:
    sys.path.insert(0, folder)
    os.chdir(folder)
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        if top and not (os.path.isdir(top) or os.path.isfile(f"{top}.py")):
            print(top)
            return 3
        print(f"ModuleNotFoundError: {error}")
        return 2
    except BaseException as error:  # noqa: BLE001 - whatever a settings module raises, say it in one line
        kind = type(error)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        print(f"{name}: {error}".splitlines()[0])
        return 2
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: check_settings.py FOLDER MODULE", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
