"""Settings for the processes the end-to-end suite starts (gunicorn, worker, beat).

The test settings (everything else from the environment: the test database, Redis, the
simulator, localstripe), with the beat entries that recover lost work — the provisioning
and rating dispatchers, resuming billing runs — every few seconds instead of every 30-300,
so "the system recovers by itself" is seen within a test's deadline. The other entries keep
their production intervals (they do not run during a test).
"""

from config.settings.base import CELERY_BEAT_SCHEDULE as _PRODUCTION_SCHEDULE
from config.settings.test import *  # noqa: F401,F403

FAST = {"dispatch-provisioning-requests": 2.0, "dispatch-udr-rating": 3.0, "resume-billing-runs": 5.0}

CELERY_BEAT_SCHEDULE = {
    name: {**entry, "schedule": FAST.get(name, entry["schedule"]),
           "options": {**entry.get("options", {}), **({"expires": FAST[name]} if name in FAST else {})}}
    for name, entry in _PRODUCTION_SCHEDULE.items()
}
