"""Settings come from the environment; production passes check --deploy; the embedded
default needs no services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DATA_DIR", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120)


PRINT_SETTINGS = """
from django.conf import settings
import json
db = settings.DATABASES["default"]
print(json.dumps({"engine": db["ENGINE"], "name": str(db["NAME"]), "eager": settings.CELERY_TASK_ALWAYS_EAGER,
                  "broker": settings.CELERY_BROKER_URL, "cache": settings.CACHES["default"]["BACKEND"], "tz": settings.TIME_ZONE,
                  "debug": settings.DEBUG}))
"""


def settings_with(env: dict[str, str]) -> dict:
    completed = run_manage("shell", "-c", PRINT_SETTINGS, env=env)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_with_nothing_set_the_project_runs_embedded(tmp_path):
    settings = settings_with({"DATA_DIR": str(tmp_path)})
    assert settings["engine"] == "django.db.backends.sqlite3"
    assert settings["name"] == str(tmp_path / "db.sqlite3")
    assert settings["eager"] is True
    assert settings["broker"] == "memory://"
    assert settings["tz"] == "Europe/Nicosia"
    assert settings["debug"] is True


def test_database_and_redis_urls_switch_to_real_services(tmp_path):
    settings = settings_with({"DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://u:p@db.internal:5432/ottbss",
                              "REDIS_URL": "redis://cache.internal:6379/1", "TIME_ZONE": "Europe/Athens"})
    assert settings["engine"] == "core.db.postgresql"  # Django's, with a health check without a round trip
    assert settings["name"] == "ottbss"
    assert settings["eager"] is False
    assert settings["broker"] == "redis://cache.internal:6379/1"
    assert settings["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert settings["tz"] == "Europe/Athens"


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k2p9-" + "x7Qz1vB8mN3rT6yU0wE5aS4dF2gH9jK" * 2,
    "ALLOWED_HOSTS": "backoffice.ott.example",
    "DATABASE_URL": "postgres://u:p@db.internal:5432/ottbss",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def test_production_settings_pass_check_deploy_without_warnings():
    completed = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "no issues" in completed.stdout


def test_production_refuses_to_start_without_its_secrets():
    for missing in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
        env = {key: value for key, value in PRODUCTION.items() if key != missing}
        completed = run_manage("check", env=env)
        assert completed.returncode != 0
        assert missing in completed.stderr, completed.stderr[-500:]


def test_a_malformed_boolean_is_named_in_the_error(tmp_path):
    completed = run_manage("check", env={"DATA_DIR": str(tmp_path), "DEBUG": "maybe"})
    assert completed.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in completed.stderr
