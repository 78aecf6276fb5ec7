"""The Nagra SOAP client (zeep) and the classification of what can go wrong.

The WSDL is read from the project (``provisioning/wsdl/smsservice_1.2.wsdl``), never
fetched, so a platform that is down cannot stop us from building a request. Every call
has an explicit connect timeout and an operation (read) timeout. ``call`` never raises
for a platform problem: it returns a ``CallOutcome`` saying whether it worked, and if
not, whether trying again may help (transient) or not (permanent).

- transient: connection errors, timeouts, HTTP 5xx without a SOAP fault, SOAP ``Server``
  faults, and the HTTP answers of a misconfigured or overloaded gateway (401, 403, 404,
  408, 429) — the command is fine, the platform or our setup is not, so it is retried;
- permanent: SOAP ``Client`` faults and requests our own schema refuses — sending the
  same command again will fail the same way, so it is REJECTED with the reason.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from lxml import etree
from zeep import Client, Settings
from zeep.exceptions import Fault, TransportError, ValidationError, XMLSyntaxError
from zeep.helpers import serialize_object
from zeep.plugins import Plugin
from zeep.transports import Transport

logger = logging.getLogger(__name__)

WSDL_PATH = Path(__file__).resolve().parent.parent / "wsdl" / "smsservice_1.2.wsdl"
BINDING = "{urn:ottbss:nagra:smsservice:1.2}SmsServiceBinding"
NS = "urn:ottbss:nagra:smsservice:1.2"
TRANSIENT_HTTP = {401, 403, 404, 408, 429}


@dataclass
class CallOutcome:
    ok: bool
    transient: bool = False
    error_code: str = ""
    error_description: str = ""
    reference: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    raw_request: str = ""
    raw_response: str = ""


class _Recorder(Plugin):
    """Keeps the envelopes of one call (the raw request and response we store)."""

    def __init__(self) -> None:
        self.sent = ""
        self.received = ""

    def egress(self, envelope, http_headers, operation, binding_options):
        self.sent = etree.tostring(envelope, encoding="unicode")
        return envelope, http_headers

    def ingress(self, envelope, http_headers, operation):
        self.received = etree.tostring(envelope, encoding="unicode")
        return envelope, http_headers


_lock = threading.Lock()
_clients: dict[tuple, NagraClient] = {}


class NagraClient:
    """One endpoint's zeep service proxy. Built once per process and endpoint (parsing the
    WSDL costs more than a call); zeep clients are not thread-safe, so calls are serialised
    per client (a Celery worker process sends one command at a time anyway)."""

    def __init__(self, *, address: str, credentials: tuple[str, str] | None, connect_timeout: float, operation_timeout: float):
        session = requests.Session()
        if credentials:
            session.auth = credentials
        transport = Transport(session=session, timeout=connect_timeout, operation_timeout=(connect_timeout, operation_timeout))
        self.recorder = _Recorder()
        self.client = Client(str(WSDL_PATH), transport=transport, plugins=[self.recorder],
                             settings=Settings(strict=True, xml_huge_tree=False))
        self.service = self.client.create_service(BINDING, address)
        self.address = address
        self._call_lock = threading.Lock()

    def call(self, operation: str, arguments: dict[str, Any]) -> CallOutcome:
        with self._call_lock:
            self.recorder.sent = self.recorder.received = ""
            outcome = self._call(operation, arguments)
            outcome.raw_request, outcome.raw_response = self.recorder.sent, self.recorder.received or outcome.raw_response
            return outcome

    def _call(self, operation: str, arguments: dict[str, Any]) -> CallOutcome:
        try:
            result = getattr(self.service, operation)(**arguments)
        except Fault as fault:
            return _fault_outcome(fault)
        except requests.Timeout as error:
            return CallOutcome(ok=False, transient=True, error_code="timeout",
                               error_description=f"No answer from {self.address} in time: {error}")
        except requests.ConnectionError as error:
            return CallOutcome(ok=False, transient=True, error_code="connection_error",
                               error_description=f"The platform at {self.address} is not reachable: {error}")
        except TransportError as error:
            transient = error.status_code >= 500 or error.status_code in TRANSIENT_HTTP
            body = (error.content or b"")[:2000].decode("utf-8", "replace") if isinstance(error.content, bytes) else str(error.content or "")
            return CallOutcome(ok=False, transient=transient, error_code=f"http_{error.status_code}",
                               error_description=f"HTTP {error.status_code} from {self.address}: {body.strip()[:500]}",
                               raw_response=body)
        except (ValidationError, TypeError) as error:
            return CallOutcome(ok=False, transient=False, error_code="invalid_request", error_description=str(error))
        except (XMLSyntaxError, requests.RequestException) as error:
            return CallOutcome(ok=False, transient=True, error_code="bad_answer", error_description=str(error))
        data = serialize_object(result, dict) or {}
        return CallOutcome(ok=True, reference=str(data.get("reference") or ""), data=data)


def _fault_outcome(fault: Fault) -> CallOutcome:
    code = str(fault.code or "")
    error_code = ""
    if fault.detail is not None:
        found = fault.detail.find(f".//{{{NS}}}errorCode")
        error_code = (found.text or "").strip() if found is not None else ""
    permanent = code.split(":")[-1] == "Client"
    return CallOutcome(ok=False, transient=not permanent, error_code=error_code or ("client_fault" if permanent else "server_fault"),
                       error_description=fault.message or code)


def nagra_client(*, address: str, credentials: tuple[str, str] | None, connect_timeout: float,
                 operation_timeout: float) -> NagraClient:
    key = (address, credentials, connect_timeout, operation_timeout)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = NagraClient(address=address, credentials=credentials, connect_timeout=connect_timeout,
                                                 operation_timeout=operation_timeout)
        return client
