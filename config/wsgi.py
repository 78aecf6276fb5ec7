"""The WSGI application (gunicorn ``config.wsgi``, as the Procfile runs it).

Once the application is loaded, every view module is imported (the URLconf, which Django
would otherwise import on the first request) and what the process has built so far —
modules, settings, apps, models, URL patterns, DRF and admin classes, ~175,000 objects —
is moved out of the cycle collector's reach (``gc.freeze``): they live as long as the
process, and each full collection used to walk them all. Measured in a gunicorn worker
under the portal benchmark: its one full collection took 78–198 ms, a stall of every
request that worker held (docs/benchmarks.md, 2026-12-08). Under ``--preload`` this runs
in the master before the fork, which is what ``gc.freeze`` is for (the frozen pages are
never written again, so the workers keep sharing them).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_wsgi_application()


def _startup_objects_freeze() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 — imports the URLconf and every view module now
    gc.collect()
    gc.freeze()


_startup_objects_freeze()
