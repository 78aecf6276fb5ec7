"""Queueing Celery work after a commit without letting a broker outage fail the request.

Every task the services queue after their transaction stands for rows already committed
(an outbox request, a posted invoice, a billing run), and a scheduled dispatcher finds
those rows again. So when Redis is down, the web request that committed them must still
answer as done (a client retrying a done order would only get it replayed): the failure
is logged, naming what will pick the work up, and nothing is raised.

No result is kept (``ignore_result``): nobody reads these results, and a web process that
subscribed to the result store stays broken after a Redis restart until it is restarted.

A publish is tried once (``retry=False``): Celery's default three retries kept a request
waiting ~25 s on a Redis that hangs (5 s socket timeout each), for work the dispatcher
finds anyway; now it waits one socket timeout (``REDIS_SOCKET_TIMEOUT``).
"""

from __future__ import annotations

import logging

from celery.canvas import Signature
from django.db import transaction

logger = logging.getLogger(__name__)


def signature_queue(signature: Signature, *, recovered_by: str) -> bool:
    """Send ``signature`` now; on a broker failure log it and return False."""
    try:
        signature.apply_async(ignore_result=True, retry=False)
    except Exception:  # noqa: BLE001 — any broker/transport error: the rows are the record
        logger.warning("Could not queue %s; %s will pick the work up.", signature, recovered_by, exc_info=True)
        return False
    return True


def signature_queue_on_commit(signature: Signature, *, recovered_by: str) -> None:
    """``signature_queue`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: signature_queue(signature, recovered_by=recovered_by))
