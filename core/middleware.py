"""Request id, request log line and request latency metric.

``RequestIdMiddleware`` goes first in ``MIDDLEWARE`` so every response — redirects and
errors included — carries ``X-Request-ID`` and every log line written while handling the
request carries its id. ``RequestMetricsMiddleware`` times the request for Prometheus.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.core.signals import request_finished
from django.dispatch import receiver
from django.utils.functional import SimpleLazyObject, empty

from core.logging import request_id_var
from core.metrics import request_observe
from core.refcache import versions_read_once

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it is short and plain, so a client cannot inject log lines.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes come every few seconds; their successes would drown the request log.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

request_logger = logging.getLogger("ottbss.request")


def request_id_from(request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _ACCEPTABLE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Accepts the caller's (or the proxy's) ``X-Request-ID`` or makes one, returns it in
    the response and writes one log line per request: method, path, status, duration,
    user id. Headers, bodies and query strings are never logged (they carry credentials)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Kept until the response is closed (request_finished), so Django's own
        # "django.request" line for a 4xx/5xx, written after the middleware, carries the id too.
        request.request_id = request_id_from(request)
        request_id_var.set(request.request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        self._log(request, response, time.perf_counter() - started)
        return response

    def _log(self, request, response, seconds: float) -> None:
        if request.path in _QUIET_PATHS and response.status_code < 400:
            return
        user_id = authenticated_user_id(request)
        request_logger.info(
            "%s %s %s", request.method, request.path, response.status_code,
            extra={"method": request.method, "path": request.path, "status": response.status_code,
                   "duration_ms": round(seconds * 1000, 1), "user_id": user_id},
        )


class RequestMetricsMiddleware:
    """Observes ``ottbss_http_request_duration_seconds`` by view name, method and status.
    The view name (not the path) keeps the number of series bounded: ids in URLs would
    make one series per object."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match else "unresolved"  # the URL name, or the view's dotted path
        method = request.method if request.method in _KNOWN_METHODS else "OTHER"
        request_observe(view=view, method=method, status=response.status_code, seconds=time.perf_counter() - started)
        return response


class ReferenceVersionsMiddleware:
    """A GET or HEAD request reads each reference group's version once (``core.refcache``):
    an entitlement check looks at the titles twice, and both looks see the same titles."""

    SAFE_METHODS = frozenset({"GET", "HEAD"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in self.SAFE_METHODS:
            return self.get_response(request)
        with versions_read_once():
            return self.get_response(request)


@receiver(request_finished, dispatch_uid="core.middleware.request_context_clear")
def _request_context_clear(**kwargs) -> None:
    request_id_var.set(None)


def authenticated_user_id(request) -> int | None:
    """The user the request was authenticated as (session, token or device), without
    loading a session nobody looked at."""
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return user.pk if user is not None and user.is_authenticated else None
