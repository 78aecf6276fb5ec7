"""Celery entry points for payments: each takes ids and calls one service."""

from celery import shared_task


@shared_task
def invoice_collect_task(invoice_id: int) -> int | None:
    """Automatic collection of a just-posted invoice (scheduled on commit by the posting)."""
    from .services.collection import invoice_collect

    payment = invoice_collect(invoice_id=invoice_id)
    return payment.pk if payment else None


@shared_task
def dunning_run_task() -> int:
    """The hourly dunning run (Celery beat)."""
    from .services.dunning import dunning_run

    return dunning_run()
