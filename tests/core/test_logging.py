"""Structured logs: one JSON object per line with the request id, user, path, status and
duration; the id comes from X-Request-ID or is made, is returned, and follows the request
into Celery tasks; credentials and card numbers never reach a log line."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from core.logging import request_id_var
from core.tasks import idempotency_records_purge_task

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STREAM = io.StringIO()  # the console handler writes here during these tests (ext:// below)

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """The project's LOGGING, JSON formatter, writing to STREAM; the lines it wrote, parsed."""
    STREAM.seek(0)
    STREAM.truncate()
    console = {**settings.LOGGING["handlers"]["console"], "formatter": "json", "stream": "ext://tests.core.test_logging.STREAM"}
    logging.config.dictConfig({**settings.LOGGING, "handlers": {"console": console}})

    def lines() -> list[dict]:
        return [json.loads(line) for line in STREAM.getvalue().splitlines()]  # every line is one JSON object

    yield lines
    logging.config.dictConfig(settings.LOGGING)


def request_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "ottbss.request"]


def test_a_request_is_one_json_line_with_its_id_and_never_its_credentials(client, json_log):
    secret = "9f1c2b7e4d5a6f8e0b1c2d3e4f5a6b7c8d9e0f1a"

    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {secret}", HTTP_X_REQUEST_ID="lb-7f3a-0001")

    assert response.status_code == 401
    assert response["X-Request-ID"] == "lb-7f3a-0001"
    lines = json_log()
    [line] = request_lines(lines)
    assert {key: line[key] for key in ("level", "request_id", "method", "path", "status", "user_id")} == {
        "level": "INFO", "request_id": "lb-7f3a-0001", "method": "GET", "path": "/api/v1/me/", "status": 401, "user_id": None}
    assert line["message"] == "GET /api/v1/me/ 401"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert all(other["request_id"] == "lb-7f3a-0001" for other in lines)  # django.request's warning too
    assert secret not in STREAM.getvalue()


def test_the_authenticated_user_is_on_the_request_line(portal_client, json_log):
    response = portal_client.get("/api/v1/me/")

    assert response.status_code == 200
    [line] = request_lines(json_log())
    assert line["user_id"] == Token.objects.get().user_id
    assert line["status"] == 200


def test_a_request_id_is_made_when_none_or_an_unsafe_one_is_given(client, json_log):
    plain = client.get("/healthz/nothing")
    forged = client.get("/healthz/nothing", HTTP_X_REQUEST_ID='x"}\n{"level": "CRITICAL')

    assert re.fullmatch(r"[0-9a-f]{32}", plain["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", forged["X-Request-ID"])
    assert plain["X-Request-ID"] != forged["X-Request-ID"]
    assert [line["request_id"] for line in request_lines(json_log())] == [plain["X-Request-ID"], forged["X-Request-ID"]]


def test_credentials_card_numbers_and_keys_are_scrubbed_from_any_log_line(json_log):
    logger = logging.getLogger("payments.services.collection")

    logger.warning("Gateway call failed: headers=%s", {"Authorization": "Bearer sk_live_51Habc123DEF456", "Accept": "json"})
    logger.error("Declined card 4242 4242 4242 4242 for order 1234567890123 via postgres://app:pa55word@db/ottbss",
                 extra={"password": "hunter2-hunter2", "stripe_customer": "cus_123"})
    try:
        raise RuntimeError("webhook secret whsec_abcdef123456 rejected; Device dk_8f7e6d5c4b3a2910")
    except RuntimeError:
        logger.exception("Webhook failed")

    text = STREAM.getvalue()
    for secret in ("sk_live_51Habc123DEF456", "4242 4242 4242 4242", "pa55word", "hunter2-hunter2", "whsec_abcdef123456",
                   "dk_8f7e6d5c4b3a2910"):
        assert secret not in text
    first, second, third = json_log()
    assert "'Accept': 'json'" in first["message"]  # the rest of the message stays readable
    assert "order 1234567890123" in second["message"]  # a number failing the Luhn check is not a card
    assert second["password"] == "[REDACTED]" and second["stripe_customer"] == "cus_123"
    assert "RuntimeError" in third["exception"]


def test_words_after_a_scheme_name_stay_readable(json_log):
    logging.getLogger("accounts").info("Token authentication failed for Device dk_8f7e6d5c4b3a2910")

    [line] = json_log()
    assert line["message"] == "Token authentication failed for Device [REDACTED]"


def test_a_task_sent_during_a_request_logs_in_the_worker_with_that_request_id(tmp_path):
    """A real worker process (JSON logs) consuming from Redis picks the id from the task headers."""
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test runs the suite with a real Redis broker"
    queue = f"logging-test-{uuid.uuid4().hex[:8]}"
    db = settings.DATABASES["default"]
    env = {**{key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"},
           "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_FORMAT": "json", "REDIS_URL": settings.REDIS_URL,
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([str(BIN / "celery"), "-A", "config", "worker", "--pool", "solo", "--queues", queue,
                               "--loglevel", "INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"],
                              cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    token = request_id_var.set("req-from-portal-42")
    try:
        idempotency_records_purge_task.apply_async(queue=queue)
    finally:
        request_id_var.reset(token)
    try:
        deadline = time.monotonic() + 60
        succeeded = []
        while not succeeded:
            assert time.monotonic() < deadline and worker.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            succeeded = [line for line in lines if "succeeded" in line["message"]]
        assert succeeded[0]["request_id"] == "req-from-portal-42"
        assert succeeded[0]["logger"] == "celery.app.trace"
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=20)


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    keep = {key: value for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "LOG_FORMAT", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**keep, **env}, capture_output=True, text=True, timeout=120)


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "logging-test-" + "Zq8Wx3Rt5Yu7Io9Pa1Sd2Fg4Hj6Kl0" * 2,
    "ALLOWED_HOSTS": "backoffice.ott.example",
    "DATABASE_URL": "postgres://u:p@db.internal:5432/ottbss",
    "REDIS_URL": "redis://cache.internal:6379/0",
}
LOG_SOMETHING = "import logging; logging.getLogger('ottbss.check').warning('hello %s', 'operator')"


def test_production_logs_json_and_a_developer_can_choose_text(tmp_path):
    production = run_manage("shell", "-c", LOG_SOMETHING, env=PRODUCTION)
    text = run_manage("shell", "-c", LOG_SOMETHING, env={"DATA_DIR": str(tmp_path), "LOG_FORMAT": "text"})
    refused = run_manage("check", env={"DATA_DIR": str(tmp_path), "LOG_FORMAT": "xml"})

    assert production.returncode == 0, production.stderr
    line = json.loads(production.stderr.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "ottbss.check", "hello operator")
    assert text.returncode == 0 and text.stderr.strip().endswith("WARNING ottbss.check hello operator")
    assert refused.returncode != 0 and "LOG_FORMAT='xml' must be 'text' or 'json'" in refused.stderr
