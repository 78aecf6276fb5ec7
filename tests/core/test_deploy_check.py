"""Production settings: `manage.py check --deploy` has nothing to say (what `make
check-deploy` runs), and behind the TLS proxy the probes and the scrape still answer over
plain HTTP while everything else is redirected to HTTPS."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRUBBED = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "LOG_FORMAT",
            "METRICS_TOKEN", "METRICS_ALLOWED_IPS", "SECURE_SSL_REDIRECT", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    return {**env, "DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "ott.example", "DATABASE_URL": f"postgres://ottbss:pw@127.0.0.1:{closed_port()}/ottbss",
            "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0", **overrides}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_no_warning_with_production_settings():
    completed = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip() == "System check identified no issues (0 silenced)."
    assert "WARNING" not in completed.stderr


def test_check_deploy_stays_clean_with_the_operations_settings_set():
    env = production_env(LOG_FORMAT="text", METRICS_TOKEN=secrets.token_urlsafe(32), METRICS_ALLOWED_IPS="10.0.0.0/8",
                         HEALTH_CHECK_TIMEOUT_SECONDS="1")

    completed = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_a_malformed_metrics_network_is_refused_at_start():
    completed = manage("check", env=production_env(METRICS_ALLOWED_IPS="10.0.0.0/8,office"))

    assert completed.returncode != 0
    assert "METRICS_ALLOWED_IPS: 'office' is not an address or network." in completed.stderr


PROBE = """
import json
from django.test import Client
client = Client(HTTP_HOST="ott.example", raise_request_exception=False)
answers = {path: client.get(path).status_code for path in ("/healthz", "/readyz", "/metrics", "/admin/login/", "/api/v1/me/")}
answers["readyz_failed"] = client.get("/readyz").json()["failed"]
print(json.dumps(answers))
"""


def test_probes_and_the_scrape_answer_over_plain_http_while_the_rest_is_redirected():
    """PostgreSQL and Redis are unreachable here: readiness says so, the scrape still answers."""
    completed = manage("shell", "-c", PROBE, env=production_env(HEALTH_CHECK_TIMEOUT_SECONDS="1", DB_CONNECT_TIMEOUT="1"))

    assert completed.returncode == 0, completed.stderr[-3000:]
    answers = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answers["/readyz"] == 503 and answers["readyz_failed"] == ["database", "cache", "broker"]
    assert answers["/metrics"] == 200
    assert answers["/admin/login/"] == 301 and answers["/api/v1/me/"] == 301
    assert answers["/healthz"] == 500  # liveness reaches the database: a web process cut off from it is taken out
