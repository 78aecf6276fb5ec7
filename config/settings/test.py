"""The pytest suite. ``make test`` provides real PostgreSQL and Redis through DATABASE_URL
and REDIS_URL; without them the suite falls back to SQLite (the smoke lane)."""

from .base import *  # noqa: F401,F403
from .base import DATA_DIR, STATIC_ROOT, REST_FRAMEWORK

DEBUG = False
SECRET_KEY = "test-key-only-for-the-test-suite-0123456789abcdefghijklmnop"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; never in production
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
DATA_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise looks here; runserver serves app static files itself
REST_FRAMEWORK = {**REST_FRAMEWORK}
