#!/usr/bin/env python3
"""``make run``: migrate, start the Nagra simulator, load the demo, serve.

The local settings send every Nagra command to the simulator at ``NAGRA_ENDPOINT``'s
default (``provisioning.simulator.DEFAULT_ADDRESS``). Without one listening there, the demo's
provisioning requests (new accounts, the PPV Service entitlements, paired devices, every
order's PURCHASE_PPV) fail with ``connection_error`` and wait PENDING; ``make run`` has
no Celery beat to retry them. So, unless ``NAGRA_ENDPOINT`` is set (you point at your own
platform or sandbox), this starts ``manage.py nagra_simulator`` on that address before the
demo is loaded — or uses the simulator already answering there — sends whatever earlier
runs left PENDING and due (``provisioning_dispatch``), then runs the development server in
the foreground. Ctrl-C stops both.

The simulator keeps the platform's state in ``DATA_DIR/nagra-simulator-<database>.json``,
so the next ``make run`` still has the accounts the demo created there; a database with
no provisioning requests yet (new, or emptied) starts it empty.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provisioning.simulator import DEFAULT_ADDRESS  # noqa: E402  (no Django: stdlib and lxml)

MANAGE = [sys.executable, str(ROOT / "manage.py")]


def answers(endpoint: str) -> bool:
    """Whether a Nagra simulator (or anything serving our WSDL) answers at ``endpoint``."""
    try:
        with urllib.request.urlopen(f"{endpoint}?wsdl", timeout=1) as response:
            return response.status == 200 and b"smsservice" in response.read(4096)
    except OSError:
        return False


def simulator_state_file() -> Path:
    """Where the simulator keeps the platform of this database; emptied for a database that
    has sent nothing yet (its accounts would otherwise exist there already: ACCOUNT_EXISTS)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from provisioning.models import ProvisioningRequest

    database = settings.DATABASES["default"]
    identity = f"{database['ENGINE']}|{database.get('HOST', '')}|{database.get('PORT', '')}|{database['NAME']}"
    state = Path(settings.DATA_DIR) / f"nagra-simulator-{hashlib.sha256(identity.encode()).hexdigest()[:12]}.json"
    if not ProvisioningRequest.objects.exists():
        state.unlink(missing_ok=True)
    elif not state.exists() and ProvisioningRequest.objects.filter(state=ProvisioningRequest.State.COMPLETED).exists():
        print("Nagra: this database sent commands to a simulator whose state was not kept (before make run kept it, or "
              "the file was removed): the new one knows none of its accounts, so their commands will be refused "
              "(UNKNOWN_ACCOUNT). `make clean` starts the demo afresh.", flush=True)
    connection.close()
    return state


def simulator_start(endpoint: str) -> subprocess.Popen | None:
    """The simulator on ``endpoint``'s host and port, once it answers; None if one already
    did, or if it could not start (the port taken by something else: said, not fatal)."""
    if answers(endpoint):
        print(f"Nagra: using the simulator already answering at {endpoint}", flush=True)
        return None
    address = urlsplit(endpoint)
    process = subprocess.Popen(MANAGE + ["nagra_simulator", "--host", address.hostname or "127.0.0.1",
                                         "--port", str(address.port or 80), "--state-file", str(simulator_state_file())],
                               cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        if answers(endpoint):
            return process
        time.sleep(0.2)
    print(f"Nagra: the simulator did not start at {endpoint}; provisioning requests will wait PENDING "
          "(start one with `python manage.py nagra_simulator`, then `python manage.py provisioning_dispatch`).", flush=True)
    stop(process)
    return None


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    subprocess.run(MANAGE + ["migrate", "--noinput"], cwd=ROOT, check=True)
    simulator = None if "NAGRA_ENDPOINT" in os.environ else simulator_start(DEFAULT_ADDRESS)
    try:
        subprocess.run(MANAGE + ["demo_load", "--base-url", f"http://{args.host}:{args.port}"], cwd=ROOT, check=True)
        if "NAGRA_ENDPOINT" in os.environ or answers(DEFAULT_ADDRESS):
            subprocess.run(MANAGE + ["provisioning_dispatch"], cwd=ROOT, check=True)
        return subprocess.run(MANAGE + ["runserver", f"{args.host}:{args.port}"], cwd=ROOT).returncode
    except KeyboardInterrupt:  # Ctrl-C: the way to stop it, not a failure
        return 0
    except subprocess.CalledProcessError as failed:
        return failed.returncode
    finally:
        stop(simulator)


if __name__ == "__main__":
    sys.exit(main())
