"""The WSGI module as gunicorn loads it: every view imported and the start-up objects out
of the cycle collector's reach (config/wsgi.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_the_application_imports_the_views_and_freezes_what_it_built():
    probe = ("import gc, sys; import config.wsgi; "
             "print(gc.get_freeze_count(), 'subscriptions.api.orders' in sys.modules, len(gc.get_objects()))")
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    frozen, views_imported, still_tracked = out.split()
    assert views_imported == "True"  # imported at load, not on the first request
    assert int(frozen) > 50_000 and int(still_tracked) < int(frozen) // 10
