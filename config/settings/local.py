"""A developer's machine and ``make run``: debug on, a fixed development key."""

from config.env import env_bool, env_str

from .base import *  # noqa: F401,F403
from .base import DATA_DIR, STATIC_ROOT

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "") or "local-development-key-not-for-production-use-0123456789"
DATA_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise looks here; runserver serves app static files itself
