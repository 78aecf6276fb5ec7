"""Django's 500 handler (``handler500`` in config/urls.py): the API answers in its one error
format even when a view crashes, and with 503 + Retry-After when the failure is an outage
of a service the back office depends on (PostgreSQL, Redis, the broker) — a client can
tell "try again shortly" from "this is a bug". Pages outside the API keep Django's page.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.api.errors import error_body

OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, BrokerError)
RETRY_AFTER_SECONDS = 5


def server_error(request) -> HttpResponse:
    if not request.path.startswith("/api/"):
        return defaults.server_error(request)
    if isinstance(sys.exc_info()[1], OUTAGES):
        response = JsonResponse(error_body("service_unavailable", "A service the back office needs is unavailable; try again shortly."),
                                status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."), status=500)
