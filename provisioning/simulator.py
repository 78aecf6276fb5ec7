"""A Nagra simulator: a small SOAP server speaking our ``smsservice_1.2`` contract.

Operators use it as a sandbox (``manage.py nagra_simulator --port 8070``) and the test
suite starts one per session. It needs no framework: ``http.server`` threads and lxml.

- ``GET <any path>?wsdl`` serves the WSDL with this server's address in it.
- ``POST /smsservice_1.2`` runs one SOAP operation against the in-memory platform state
  (accounts, their devices and entitlements).
- Idempotent by request id, as the real platform is: a request id that was applied is not
  applied again; the first answer is returned.
- Switches, set at start (CLI flags) or live through ``POST /control`` with JSON:
  ``{"down": true}`` (every SOAP call gets HTTP 503), ``{"latency": 2.0}`` (seconds before
  processing), ``{"latency_after_apply": 2.0}`` (seconds after applying, before answering:
  a client that times out or dies then has had its command applied), ``{"faults":
  {"AddEntitlement": {"code": "Client", "error_code": "INVALID_PRODUCT", "message": "...",
  "times": 1}}}`` (the next calls of an operation fail; ``times`` omitted = until cleared),
  ``{"reset": true}`` (empty state, switches off). ``GET /control`` returns the state and
  the log of applied requests as JSON.
- ``--state-file PATH`` keeps the state across restarts (``make run`` uses one under
  ``DATA_DIR``); without it the state lives in memory only (the test suite's).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "smsservice_1.2.wsdl"
NS = "urn:ottbss:nagra:smsservice:1.2"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DEFAULT_ADDRESS = "http://127.0.0.1:8070/smsservice_1.2"
SERVICE_PATH = "/smsservice_1.2"


class PlatformFault(Exception):
    """A SOAP fault: ``Client`` (the request is wrong) or ``Server`` (the platform failed)."""

    def __init__(self, code: str, error_code: str, message: str):
        super().__init__(message)
        self.code, self.error_code, self.message = code, error_code, message


@dataclass
class Account:
    account_id: str
    status: str = "ACTIVE"
    name: str = ""
    classification: str = ""
    devices: dict[str, str] = field(default_factory=dict)                    # serial -> model
    entitlements: dict[str, dict[str, str | None]] = field(default_factory=dict)  # product id -> {kind, validUntil}


class Platform:
    """The platform's state and the operations on it (thread-safe: one lock).

    With ``state_file``, the accounts, the answers by request id and the applied log are
    kept in that JSON file (rewritten after each applied command, atomically) and read back
    at start, so a restarted sandbox still knows the accounts it created, as a real
    platform would. The switches are not kept: a restart starts up, with no faults."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.state_file = state_file
        self.reset()
        self._load()

    def reset(self) -> None:
        with self.lock:
            self.accounts: dict[str, Account] = {}
            self.answers: dict[str, dict[str, str]] = {}   # request id -> the first answer
            self.applied: list[dict[str, Any]] = []        # every applied command, in order
            self.down = False
            self.latency = 0.0
            self.latency_after_apply = 0.0
            self.faults: dict[str, dict[str, Any]] = {}

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        with self.lock:
            self.accounts = {account_id: Account(**fields) for account_id, fields in data["accounts"].items()}
            self.answers, self.applied = data["answers"], data["applied"]

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"accounts": {account_id: asdict(account) for account_id, account in self.accounts.items()},
                "answers": self.answers, "applied": self.applied}
        partial = self.state_file.with_name(self.state_file.name + ".partial")
        partial.write_text(json.dumps(data))
        os.replace(partial, self.state_file)

    # --- switches -------------------------------------------------------------------------
    def control(self, data: dict[str, Any]) -> None:
        with self.lock:
            if data.get("reset"):
                self.reset()
                self._save()
            for name in ("down", "latency", "latency_after_apply"):
                if name in data:
                    setattr(self, name, type(getattr(self, name))(data[name]))
            if "faults" in data:
                self.faults = {op: dict(spec) for op, spec in (data["faults"] or {}).items()}

    def fault_take(self, operation: str) -> PlatformFault | None:
        with self.lock:
            spec = self.faults.get(operation)
            if spec is None:
                return None
            if "times" in spec:
                spec["times"] -= 1
                if spec["times"] <= 0:
                    del self.faults[operation]
            return PlatformFault(spec.get("code", "Server"), spec.get("error_code", "SIMULATED"),
                                 spec.get("message", f"Simulated {spec.get('code', 'Server')} fault in {operation}."))

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accounts": {account_id: {"status": a.status, "name": a.name, "classification": a.classification,
                                          "devices": dict(a.devices), "entitlements": dict(a.entitlements)}
                             for account_id, a in self.accounts.items()},
                "applied": list(self.applied),
                "switches": {"down": self.down, "latency": self.latency, "latency_after_apply": self.latency_after_apply,
                             "faults": self.faults},
            }

    # --- operations -----------------------------------------------------------------------
    def command(self, operation: str, args: dict[str, str]) -> dict[str, str]:
        """Apply a command once per request id; a resend gets the first answer."""
        request_id = args.get("requestId") or ""
        if not request_id:
            raise PlatformFault("Client", "MISSING_REQUEST_ID", "Every command needs a requestId.")
        with self.lock:
            if request_id in self.answers:
                return self.answers[request_id]
            handler = getattr(self, f"op_{operation}", None)
            if handler is None:
                raise PlatformFault("Client", "UNKNOWN_OPERATION", f"Unknown operation {operation}.")
            status = handler(args)
            answer = {"requestId": request_id, "reference": f"NG-{uuid.uuid4().hex[:12].upper()}", "status": status}
            self.answers[request_id] = answer
            self.applied.append({"requestId": request_id, "operation": operation, "accountId": args.get("accountId"),
                                 "args": args, "reference": answer["reference"]})
            self._save()
            return answer

    def _account(self, args: dict[str, str], *, usable: bool = True) -> Account:
        account_id = _required(args, "accountId")
        account = self.accounts.get(account_id)
        if account is None:
            raise PlatformFault("Client", "UNKNOWN_ACCOUNT", f"Account {account_id} does not exist.")
        if usable and account.status == "CANCELLED":
            raise PlatformFault("Client", "ACCOUNT_CANCELLED", f"Account {account_id} is cancelled.")
        return account

    def op_CreateAccount(self, args):
        account_id = _required(args, "accountId")
        if account_id in self.accounts:
            raise PlatformFault("Client", "ACCOUNT_EXISTS", f"Account {account_id} already exists.")
        self.accounts[account_id] = Account(account_id, name=args.get("name") or "", classification=args.get("classification") or "")
        return "CREATED"

    def op_UpdateAccount(self, args):
        account = self._account(args)
        for name in ("name", "classification"):
            if args.get(name):
                setattr(account, name, args[name])
        if args.get("status"):
            if args["status"] not in {"ACTIVE", "SUSPENDED"}:
                raise PlatformFault("Client", "INVALID_STATUS", f"Status {args['status']} is not ACTIVE or SUSPENDED.")
            account.status = args["status"]
        return account.status

    def op_SuspendAccount(self, args):
        account = self._account(args)
        account.status = "SUSPENDED"
        return account.status

    def op_CancelAccount(self, args):
        account = self._account(args, usable=False)
        account.status, account.entitlements, account.devices = "CANCELLED", {}, {}
        return account.status

    def _device_owner(self, serial: str) -> Account | None:
        return next((a for a in self.accounts.values() if serial in a.devices), None)

    def op_PairDevice(self, args):
        account, serial = self._account(args), _required(args, "serialNumber")
        owner = self._device_owner(serial)
        if owner is not None and owner is not account:
            raise PlatformFault("Client", "DEVICE_IN_USE", f"Device {serial} is paired with another account.")
        account.devices[serial] = args.get("model") or ""
        return "PAIRED"

    def op_UnpairDevice(self, args):
        account, serial = self._account(args), _required(args, "serialNumber")
        if serial not in account.devices:
            raise PlatformFault("Client", "DEVICE_NOT_PAIRED", f"Device {serial} is not paired with account {account.account_id}.")
        del account.devices[serial]
        return "UNPAIRED"

    def op_SwapDevice(self, args):
        account = self._account(args)
        old, new = _required(args, "oldSerialNumber"), _required(args, "newSerialNumber")
        if old not in account.devices:
            raise PlatformFault("Client", "DEVICE_NOT_PAIRED", f"Device {old} is not paired with account {account.account_id}.")
        owner = self._device_owner(new)
        if owner is not None and owner is not account:
            raise PlatformFault("Client", "DEVICE_IN_USE", f"Device {new} is paired with another account.")
        model = account.devices.pop(old)
        account.devices[new] = args.get("model") or model
        return "SWAPPED"

    def op_AddEntitlement(self, args):
        account, product = self._account(args), _required(args, "productId")
        account.entitlements[product] = {"kind": "SUBSCRIPTION", "validUntil": None}
        return "ENTITLED"

    def op_RemoveEntitlement(self, args):
        account, product = self._account(args), _required(args, "productId")
        removed = account.entitlements.pop(product, None)
        return "REMOVED" if removed else "NOT_ENTITLED"

    def op_PurchasePpvEvent(self, args):
        account, product = self._account(args), _required(args, "productId")
        if account.status != "ACTIVE":
            raise PlatformFault("Client", "ACCOUNT_SUSPENDED", f"Account {account.account_id} is {account.status}.")
        account.entitlements[product] = {"kind": "PPV", "validUntil": args.get("validUntil")}
        return "PURCHASED"

    def entitlements_list(self, args: dict[str, str]) -> tuple[str, dict[str, dict]]:
        with self.lock:
            account = self._account(args, usable=False)
            return account.status, {product: dict(value) for product, value in account.entitlements.items()}


def _required(args: dict[str, str], name: str) -> str:
    value = (args.get(name) or "").strip()
    if not value:
        raise PlatformFault("Client", "MISSING_FIELD", f"{name} is required.")
    return value


# --- SOAP ---------------------------------------------------------------------------------

def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def soap_request_parse(body: bytes) -> tuple[str, dict[str, str]]:
    """The operation (from the body element ``<Op>Request``) and its simple arguments."""
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise PlatformFault("Client", "MALFORMED_XML", f"The request is not XML: {error}.") from None
    payload = root.find(f"{{{SOAP_ENV}}}Body")
    element = payload[0] if payload is not None and len(payload) else None
    if element is None or not etree.QName(element).localname.endswith("Request"):
        raise PlatformFault("Client", "NO_OPERATION", "The SOAP body names no operation.")
    operation = etree.QName(element).localname[: -len("Request")]
    return operation, {etree.QName(child).localname: (child.text or "") for child in element}


def _envelope(body: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "ns": NS})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(body)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def soap_response(operation: str, values: dict[str, str]) -> bytes:
    element = etree.Element(_q(f"{operation}Response"))
    for name in ("requestId", "reference", "status"):
        etree.SubElement(element, _q(name)).text = values[name]
    return _envelope(element)


def soap_entitlements(account_id: str, status: str, entitlements: dict[str, dict]) -> bytes:
    element = etree.Element(_q("ListEntitlementsResponse"))
    etree.SubElement(element, _q("accountId")).text = account_id
    etree.SubElement(element, _q("status")).text = status
    for product, value in sorted(entitlements.items()):
        item = etree.SubElement(element, _q("entitlement"))
        etree.SubElement(item, _q("productId")).text = product
        etree.SubElement(item, _q("kind")).text = value["kind"]
        if value.get("validUntil"):
            etree.SubElement(item, _q("validUntil")).text = value["validUntil"]
    return _envelope(element)


def soap_fault(fault: PlatformFault) -> bytes:
    element = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(element, "faultcode").text = f"soap:{fault.code}"
    etree.SubElement(element, "faultstring").text = fault.message
    detail = etree.SubElement(etree.SubElement(element, "detail"), _q("NagraFault"))
    etree.SubElement(detail, _q("errorCode")).text = fault.error_code
    etree.SubElement(detail, _q("description")).text = fault.message
    return _envelope(element)


def wsdl_for(address: str) -> bytes:
    return WSDL_PATH.read_bytes().replace(DEFAULT_ADDRESS.encode(), address.encode())


# --- HTTP ---------------------------------------------------------------------------------

class SimulatorHandler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/control":
            return self._send(200, json.dumps(self.server.platform.snapshot()).encode(), "application/json")
        if url.query.lower() == "wsdl":
            return self._send(200, wsdl_for(self.server.address))
        return self._send(404, b"Not found. The WSDL is at ?wsdl.", "text/plain")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path == "/control":
            self.server.platform.control(json.loads(body or b"{}"))
            return self._send(200, json.dumps(self.server.platform.snapshot()["switches"]).encode(), "application/json")
        if url.path != SERVICE_PATH:
            return self._send(404, b"Not found.", "text/plain")
        if not self._authorised():
            return self._send(401, b"Unauthorised.", "text/plain")
        platform = self.server.platform
        if platform.down:
            return self._send(503, b"The platform is down (simulated).", "text/plain")
        time.sleep(platform.latency)
        try:
            status, response = 200, self._operation(body)
        except PlatformFault as fault:
            status, response = 500, soap_fault(fault)
        time.sleep(platform.latency_after_apply)
        self._send(status, response)

    def _operation(self, body: bytes) -> bytes:
        platform = self.server.platform
        operation, args = soap_request_parse(body)
        injected = platform.fault_take(operation)
        if injected is not None:
            raise injected
        if operation == "ListEntitlements":
            status, entitlements = platform.entitlements_list(args)
            return soap_entitlements(args["accountId"], status, entitlements)
        return soap_response(operation, platform.command(operation, args))

    def _authorised(self) -> bool:
        expected = self.server.credentials
        if expected is None:
            return True
        import base64

        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            username, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (username, password) == expected


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, *, credentials: tuple[str, str] | None = None, verbose: bool = False,
                 state_file: Path | None = None):
        super().__init__((host, port), SimulatorHandler)
        self.platform = Platform(state_file)
        self.credentials = credentials
        self.verbose = verbose
        self.address = f"http://{host}:{self.server_address[1]}{SERVICE_PATH}"
