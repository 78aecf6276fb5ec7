"""The Celery application: ``celery -A config worker`` and ``celery -A config beat``.

Configuration comes from Django settings prefixed ``CELERY_``. Without ``REDIS_URL`` tasks
run eagerly in the calling process (the embedded default).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("ottbss")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
