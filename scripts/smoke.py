#!/usr/bin/env python3
"""The smoke lane: the embedded default (SQLite, eager Celery, no services) really works.

In a fresh data directory: migrate, load the demo, start the server as ``make run`` does,
then log in as a demo customer through the API, read the profile, fetch the OpenAPI schema
and the admin login page. Prints ``smoke: N passed, M failed`` and exits non-zero on any
failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


PROVISIONING_STATES = (
    "from django.db.models import Count; from provisioning.models import ProvisioningRequest as R; "
    "print('; '.join(f'{k} {s} {n}' for k, s, n in R.objects.values_list('kind', 'state').annotate(n=Count('pk')).order_by('kind', 'state')))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, *, data: dict | None = None, token: str | None = None, accept: str = "application/json") -> tuple[int, bytes]:
    headers = {"Accept": accept}
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Token {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main() -> int:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    results: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append((name, ok, detail))
        print(f"smoke: {'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}", flush=True)

    with tempfile.TemporaryDirectory(prefix="ottbss-smoke-") as data_dir:
        env["DATA_DIR"] = data_dir
        manage = [PYTHON, str(ROOT / "manage.py")]
        # The Nagra sandbox make run starts (scripts/run.py), here on a free port: with eager
        # Celery every command is sent right after its commit, in the order the demo writes them.
        nagra_port = free_port()
        env["NAGRA_ENDPOINT"] = f"http://127.0.0.1:{nagra_port}/smsservice_1.2"
        nagra = subprocess.Popen(manage + ["nagra_simulator", "--port", str(nagra_port), "--state-file",
                                           str(Path(data_dir) / "nagra.json")], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        steps = [("migrate", ["migrate", "--noinput", "-v", "0"]), ("demo_load", ["demo_load"]), ("demo_load again (idempotent)", ["demo_load"])]
        for name, step in steps:
            completed = subprocess.run(manage + step, env=env, cwd=ROOT, capture_output=True, text=True)
            check(name, completed.returncode == 0, completed.stderr[-2000:])
            if completed.returncode != 0:
                break
        check("database is a SQLite file in DATA_DIR", (Path(data_dir) / "db.sqlite3").exists())

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(manage + ["runserver", "--noreload", f"127.0.0.1:{port}"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            status = 0
            while time.monotonic() < deadline:
                try:
                    status, _ = request(f"{base}/healthz")
                    if status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            check("server answers /healthz", status == 200, f"status {status}")

            status, body = request(f"{base}/api/v1/auth/login/", data={"email": "maria@example.com", "password": "maria-portal-pass"})
            token = json.loads(body).get("token") if status == 200 else None
            check("demo customer logs in through the API", bool(token), f"{status} {body[:300]!r}")

            status, body = request(f"{base}/api/v1/me/", token=token)
            profile = json.loads(body) if status == 200 else {}
            check("GET /api/v1/me/ returns the customer's own profile",
                  profile.get("email") == "maria@example.com" and len(profile.get("accounts", [])) == 1, f"{status} {body[:300]!r}")

            status, body = request(f"{base}/api/v1/catalog/titles/?screen=SET_TOP_BOX", token=token)
            titles = json.loads(body).get("results", []) if status == 200 else []
            prices = {title["title"]: (title.get("price") or {}).get("amount") for title in titles}
            check("the Company ZX movies are in the catalog with a price", len(titles) == 3 and prices.get("Serendipity") == "3.0000",
                  f"{status} {body[:300]!r}")

            lotr = next((title["id"] for title in titles if title["title"] == "Lord of the Rings"), None)
            status, body = request(f"{base}/api/v1/orders/", data={"title": lotr}, token=token)
            order = json.loads(body) if status == 201 else {}
            check("the demo customer orders a PPV movie, invoiced at once",
                  order.get("state") == "BILLED" and order.get("currency") == "EUR", f"{status} {body[:300]!r}")

            completed = subprocess.run(manage + ["shell", "-v", "0", "-c", PROVISIONING_STATES], env=env, cwd=ROOT, capture_output=True, text=True)
            check("every demo provisioning command and the order's PURCHASE_PPV completed on the Nagra simulator",
                  completed.stdout.strip() == "ADD_ENTITLEMENT COMPLETED 3; CREATE_ACCOUNT COMPLETED 2; PAIR_DEVICE COMPLETED 1; "
                                              "PURCHASE_PPV COMPLETED 1", (completed.stdout + completed.stderr)[-2000:])

            status, body = request(f"{base}/api/v1/invoices/", token=token)
            invoices = json.loads(body).get("results", []) if status == 200 else []
            invoiced = bool(invoices) and Decimal(invoices[0]["gross_total"]) == Decimal(order.get("amount") or "-1")
            check("the order's invoice is in the customer's invoices", invoiced, f"{status} {body[:300]!r}")
            if invoices:
                status, body = request(f"{base}/api/v1/invoices/{invoices[0]['id']}/document/?format=pdf", token=token, accept="*/*")
                check("the invoice downloads as a PDF", status == 200 and body.startswith(b"%PDF"), f"status {status}")

            # A billing run on SQLite: Maria's decoder (sold, €49.00) and her Sports Pack's
            # first days (after its free week) go on one invoice; the amounts add up there too.
            completed = subprocess.run(manage + ["billing_run"], env=env, cwd=ROOT, capture_output=True, text=True)
            check("manage.py billing_run bills the demo customers", completed.returncode == 0 and "Completed," in completed.stdout,
                  (completed.stdout + completed.stderr)[-2000:])
            status, body = request(f"{base}/api/v1/invoices/", token=token)
            invoices = json.loads(body).get("results", []) if status == 200 else []
            run_invoice = invoices[0] if invoices else {}
            status, body = request(f"{base}/api/v1/invoices/{run_invoice.get('id')}/", token=token)
            lines = [line["description"] for line in json.loads(body).get("lines", [])] if status == 200 else []
            check("the run's invoice lists the decoder and the Sports Pack",
                  "Thomson decoder" in lines and any(line.startswith("Sports Pack") for line in lines), f"{status} {body[:400]!r}")

            status, body = request(f"{base}/api/v1/me/")
            check("anonymous GET /api/v1/me/ is refused with the error format",
                  status == 401 and json.loads(body)["error"]["code"] == "not_authenticated", f"{status} {body[:300]!r}")

            status, body = request(f"{base}/api/schema/?format=json")
            check("OpenAPI schema is served", status == 200 and b'"openapi"' in body, f"status {status}")

            status, body = request(f"{base}/api/docs/", accept="text/html")
            check("API docs page is served", status == 200 and b"swagger" in body.lower(), f"status {status}")

            status, body = request(f"{base}/admin/login/", accept="text/html")
            check("admin login page is served", status == 200 and b"csrfmiddlewaretoken" in body, f"status {status}")
        finally:
            for process in (server, nagra):
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    print(f"smoke: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
