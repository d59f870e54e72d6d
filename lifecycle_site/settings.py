"""DJANGO_SETTINGS_MODULE of every image: the project's own settings, then the container's environment.

LIFECYCLE_PROJECT_SETTINGS names the project's module (`mysite.settings.production`); it is imported as the
project wrote it, and `lifecycle_site.layer` applies the stack's database, secret, debug rule, hosts, proxy
header, static files and logging over it (each switchable off with LAYER_<PART>=false).
"""

import importlib
import importlib.util
import os

from lifecycle_site.layer import LayerError, apply, project_settings, stage_of

# Lower-case names here are not settings: Django reads only the upper-case ones.
_project = os.environ.get("LIFECYCLE_PROJECT_SETTINGS", "").strip()
if not _project:
    raise LayerError("LIFECYCLE_PROJECT_SETTINGS is not set; set it to the project's settings module (mysite.settings)")
if _project == __name__:
    raise LayerError(f"LIFECYCLE_PROJECT_SETTINGS={__name__} names this layer; set it to the project's settings module")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


globals().update(apply(project_settings(importlib.import_module(_project)), os.environ, _installed))

if stage_of(os.environ) == "dev":  # runserver's reloader: lifecycle_site/devreload.py
    from lifecycle_site.devreload import look_sooner

    look_sooner()
