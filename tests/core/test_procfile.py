"""The Procfile really starts: web (gunicorn), worker and beat, with production settings,
against the suite's real PostgreSQL and Redis."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    assert db["ENGINE"] == "core.db.postgresql", "make test runs this on PostgreSQL"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    expanded = subprocess.run(["sh", "-c", f"echo {command}"], env=env, capture_output=True, text=True).stdout.strip()
    argv = shlex.split(expanded)
    return subprocess.Popen([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_web_worker_and_beat_start(tmp_path):
    port = free_port()
    static_root = tmp_path / "static"
    env = {
        **{key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "procfile-test-" + "q8Wz3xR5tY7uI9oP1aS2dF4gH6jK0lZ" * 2,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "STATIC_ROOT": str(static_root),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "WORKER_CONCURRENCY": "1",
        "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
    }
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert collected.returncode == 0, collected.stderr

    entries = procfile()
    assert set(entries) == {"web", "worker", "beat"}
    processes = {name: start(command, env, tmp_path / f"{name}.log") for name, command in entries.items()}
    try:
        def get(path: str, **headers):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()

        status, body = wait_for(lambda: get("/healthz"), 60, "gunicorn to answer /healthz")
        assert (status, body) == (200, b'{"status": "ok"}')
        status, body = get("/admin/login/", **{"X-Forwarded-Proto": "https"})
        assert status == 200 and b"/static/admin/css/" in body  # hashed static files via whitenoise

        replies = wait_for(lambda: app.control.ping(timeout=1.0), 60, "the worker to answer a ping")
        assert replies
        wait_for(lambda: "beat: Starting" in (tmp_path / "beat.log").read_text(), 30, "beat to start")
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited: {(tmp_path / f'{name}.log').read_text()[-2000:]}"
    finally:
        for process in processes.values():
            try:
                os.killpg(process.pid, 15)
            except ProcessLookupError:
                pass
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
