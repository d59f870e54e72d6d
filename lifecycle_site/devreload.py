"""dev's runserver notices a saved file sooner (the loop's target: a save served within a second).

Without Watchman (not in these images) Django's reloader is its StatReloader: it reads the modification time of every
file the server has loaded once a second, so a save waited half a second on average before the restart even began.
Four looks a second cut that to an eighth; each look costs one `stat` per watched file (about 1,500 for the demo
site: milliseconds). Only dev runs runserver; stage and prod never import this.
"""

from __future__ import annotations

LOOK_EVERY_S = 0.25


def look_sooner() -> None:
    from django.utils import autoreload

    autoreload.StatReloader.SLEEP_TIME = LOOK_EVERY_S
