"""The simulator as operators use it: the WSDL at ?wsdl, idempotency by request id,
credentials when asked for, and the demo provider set up as the scenario says."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
import zeep

from provisioning.clients.nagra import nagra_client
from tests.provisioning.conftest import ROOT, free_port


def test_the_wsdl_is_served_and_zeep_can_use_it(nagra_simulator):
    nagra_simulator.control(reset=True)
    client = zeep.Client(f"{nagra_simulator.address}?wsdl")

    answer = client.service.CreateAccount(requestId="r-1", accountId="AR-SANDBOX")
    again = client.service.CreateAccount(requestId="r-1", accountId="AR-SANDBOX")

    assert answer.status == "CREATED" and again.reference == answer.reference
    assert [entry["requestId"] for entry in nagra_simulator.applied()] == ["r-1"]


def test_a_client_fault_names_the_reason(nagra_simulator):
    nagra_simulator.control(reset=True)
    client = nagra_client(address=nagra_simulator.address, credentials=None, connect_timeout=1, operation_timeout=2)

    outcome = client.call("AddEntitlement", {"requestId": "r-2", "accountId": "AR-NOBODY", "productId": "1AQ8"})

    assert (outcome.ok, outcome.transient, outcome.error_code) == (False, False, "UNKNOWN_ACCOUNT")
    assert nagra_simulator.applied() == []


def test_credentials_are_required_when_the_sandbox_is_started_with_them():
    port = free_port()
    process = subprocess.Popen([sys.executable, "manage.py", "nagra_simulator", "--port", str(port), "--username", "zx",
                                "--password", "s3cret"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{port}/smsservice_1.2"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{address}?wsdl", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        wrong = nagra_client(address=address, credentials=("zx", "wrong"), connect_timeout=1, operation_timeout=2)
        right = nagra_client(address=address, credentials=("zx", "s3cret"), connect_timeout=1, operation_timeout=2)

        refused = wrong.call("CreateAccount", {"requestId": "r-3", "accountId": "AR-1"})
        accepted = right.call("CreateAccount", {"requestId": "r-3", "accountId": "AR-1"})

        assert (refused.ok, refused.transient, refused.error_code) == (False, True, "http_401")
        assert accepted.ok
    finally:
        process.terminate()
        process.wait(timeout=10)


def _simulator_process(port: int, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "manage.py", "nagra_simulator", "--port", str(port), *extra], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/smsservice_1.2?wsdl", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise AssertionError("the simulator did not start")


def test_with_a_state_file_a_restarted_sandbox_still_has_its_accounts(tmp_path):
    # make run's sandbox: the database remembers the accounts it created there, and so must the platform.
    port, state = free_port(), tmp_path / "nagra.json"
    address = f"http://127.0.0.1:{port}/smsservice_1.2"
    process = _simulator_process(port, "--state-file", str(state))
    try:
        client = nagra_client(address=address, credentials=None, connect_timeout=1, operation_timeout=2)
        created = client.call("CreateAccount", {"requestId": "r-4", "accountId": "AR-4"})
        assert client.call("PairDevice", {"requestId": "r-5", "accountId": "AR-4", "serialNumber": "TH-4"}).ok
    finally:
        process.terminate()
        process.wait(timeout=10)
    process = _simulator_process(port, "--state-file", str(state))
    try:
        client = nagra_client(address=address, credentials=None, connect_timeout=1, operation_timeout=2)
        entitled = client.call("AddEntitlement", {"requestId": "r-6", "accountId": "AR-4", "productId": "1AQ8"})
        resent = client.call("CreateAccount", {"requestId": "r-4", "accountId": "AR-4"})

        assert entitled.ok, entitled.error_description
        assert resent.ok and resent.reference == created.reference  # still idempotent by request id
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.django_db
def test_the_demo_provider_has_its_distributor_and_decoders(zx_catalog):
    from provisioning.models import ProvisioningProvider

    nagra = ProvisioningProvider.objects.get(name="Nagra Media Platform")

    assert list(nagra.distributors.values_list("name", flat=True)) == ["Nagra Media Live Main"]
    assert list(nagra.physical_goods.values_list("code", flat=True)) == ["THOMSON-DECODER"]
    assert (nagra.protocol, nagra.encoding, nagra.state) == ("NAGRA_MEDIA_LIVE", "UTF-8", "EFFECTIVE")


@pytest.mark.django_db
def test_the_provider_page_never_shows_a_password(zx_catalog, client, administrator, settings):
    from provisioning.models import ProvisioningProvider

    settings.PROVISIONING_CREDENTIALS = {"NAGRA": {"username": "zx", "password": "very-secret-pass"}}
    client.force_login(administrator)
    nagra = ProvisioningProvider.objects.get(name="Nagra Media Platform")

    page = client.get(f"/admin/provisioning/provisioningprovider/{nagra.pk}/change/").content.decode()

    assert "very-secret-pass" not in page and "1AQ8" in page and "Nagra Media Live Main" in page
