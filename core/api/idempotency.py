"""``Idempotency-Key`` support for POST handlers.

Decorate a view's ``post`` (or ``create``) with ``@idempotent``. A request carrying the
header is executed once per caller and key; a repeat with the same body receives the first
response again (with ``Idempotent-Replayed: true``), a repeat with a different body gets
409 ``idempotency_key_reused``, and a repeat while the first is still running gets 409
``idempotency_in_progress``. Requests without the header behave as usual.

``@idempotent_atomic`` does the same in one transaction with the handler's work (see
``core.services.idempotent_call_atomic``): for handlers that only write the database, such
as the PPV order; never for one that calls a payment gateway mid-request.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.services import idempotent_call, idempotent_call_atomic, request_fingerprint

HEADER = "Idempotency-Key"


def caller_scope(request: Request) -> str:
    device = getattr(request, "device_credential", None)
    if device is not None:
        return f"device:{device.pk}"
    if request.user and request.user.is_authenticated:
        return f"user:{request.user.pk}"
    # Anonymous keys (sign-up) share one namespace: keys are client-made UUIDs and the
    # fingerprint check refuses a key reused for a different body.
    return "anonymous"


def idempotent(handler: Callable[..., Response], *, runner: Callable = idempotent_call) -> Callable[..., Response]:
    @functools.wraps(handler)
    def wrapper(view, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)

        def call() -> tuple[int, object]:
            response = handler(view, request, *args, **kwargs)
            body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
            return response.status_code, body

        status, body, replayed = runner(
            scope=caller_scope(request),
            key=key,
            fingerprint=request_fingerprint(method=request.method, path=request.path, body=request.data),
            call=call,
        )
        response = Response(body, status=status)
        response[HEADER] = key
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    return wrapper


def idempotent_atomic(handler: Callable[..., Response]) -> Callable[..., Response]:
    return idempotent(handler, runner=idempotent_call_atomic)
