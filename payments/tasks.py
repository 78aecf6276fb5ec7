"""Celery entry points for payments: each takes ids and calls one service."""

from celery import shared_task


@shared_task
def invoice_collect_task(invoice_id: int) -> int | None:
    """Automatic collection of a just-posted invoice (scheduled on commit by the posting)."""
    from .services.collection import invoice_collect

    payment = invoice_collect(invoice_id=invoice_id)
    return payment.pk if payment else None


@shared_task
def invoices_collect_task(invoice_ids: list[int]) -> int:
    """Automatic collection of invoices posted together (a billing run's chunk, a rating
    chunk's instant invoices). The posting worker sends this one message; here they are
    collected, or, more than ``COLLECT_BATCH``, split into messages of that many for the
    workers to share (Celery's ``chunks``). Returns how many were collected here."""
    from billing.services.invoicing import COLLECT_BATCH
    from core.queueing import signature_queue

    if len(invoice_ids) <= COLLECT_BATCH:
        return sum(invoice_collect_task(invoice_id) is not None for invoice_id in invoice_ids)
    signature_queue(invoice_collect_task.chunks([(invoice_id,) for invoice_id in invoice_ids], COLLECT_BATCH), recovered_by="dunning")
    return 0


@shared_task
def dunning_run_task() -> int:
    """The hourly dunning run (Celery beat)."""
    from .services.dunning import dunning_run

    return dunning_run()
