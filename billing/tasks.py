"""Celery entry points for billing: bulk UDR rating.

Throughput scales with workers: each ``udr_rating_task`` claims its chunks with
``FOR UPDATE SKIP LOCKED``, so running more worker processes (or dispatching more tasks)
rates more records per second and never rates one twice.
"""

import math
import time

from celery import shared_task
from django.conf import settings

from .models import UsageDetailRecord
from .services.rating_runs import udr_rating_claim_and_rate

TIME_BUDGET_SECONDS = 50.0
PARALLEL_TASKS = 4


@shared_task
def udr_rating_task(chunk_size: int | None = None, time_budget_seconds: float = TIME_BUDGET_SECONDS) -> int:
    """Rate chunks (``RATING_CHUNK_SIZE`` records each unless given) until none is left (or
    other workers hold the rest) or the time budget is spent, so a task never outlives the
    next dispatch by much. Returns records processed."""
    chunk_size = chunk_size or settings.RATING_CHUNK_SIZE
    deadline = time.monotonic() + time_budget_seconds
    done = 0
    while time.monotonic() < deadline:
        processed = udr_rating_claim_and_rate(chunk_size=chunk_size)
        if not processed:
            break
        done += processed
    return done


@shared_task
def udr_rating_dispatch_task(parallel: int = PARALLEL_TASKS, chunk_size: int | None = None) -> int:
    """Start enough rating tasks for the backlog, at most ``parallel`` (beat: every minute).
    Returns how many were started."""
    chunk_size = chunk_size or settings.RATING_CHUNK_SIZE
    pending = UsageDetailRecord.objects.filter(state=UsageDetailRecord.State.PENDING).count()
    tasks = min(parallel, math.ceil(pending / chunk_size))
    for _ in range(tasks):
        udr_rating_task.delay(chunk_size=chunk_size)
    return tasks


@shared_task
def billing_run_start_task(run_pk: int, parallel: int = PARALLEL_TASKS) -> int:
    """Plan the run into chunks, then start up to ``parallel`` workers billing them."""
    from .models import BillingRun
    from .services.runs import billing_run_plan

    run = billing_run_plan(run=BillingRun.objects.get(pk=run_pk))
    tasks = max(1, min(parallel, run.chunks.filter(state="PENDING").count()))
    for _ in range(tasks):
        billing_run_chunks_task.delay(run_pk)
    return tasks


@shared_task(acks_late=True)
def billing_run_chunks_task(run_pk: int) -> int:
    """Bill the run's chunks until none is left to claim, then finish the run. A chunk
    whose worker dies rolls back and stays PENDING; ``billing_runs_resume_task`` picks it up."""
    from .models import BillingRun
    from .services.runs import billing_run_chunk_bill, billing_run_finish

    run = BillingRun.objects.get(pk=run_pk)
    billed = 0
    while billing_run_chunk_bill(run=run) is not None:
        billed += 1
    billing_run_finish(run=run)
    return billed


@shared_task
def billing_runs_resume_task() -> int:
    """Beat: give every RUNNING run a worker again; returns how many runs were resumed."""
    from .services.runs import billing_runs_resume

    return billing_runs_resume()


@shared_task
def revenue_recognize_task(through: str | None = None) -> int:
    """Recognize deferred revenue through ``through`` (YYYY-MM-DD), by default yesterday in
    the operator's time zone: the last whole day served (beat: hourly, so a night without a
    worker is caught up; a re-run finds nothing due). Returns the rows written."""
    from datetime import date, timedelta

    from django.utils import timezone

    from .services.recognition import revenue_recognize

    day = date.fromisoformat(through) if through else timezone.localdate() - timedelta(days=1)
    return revenue_recognize(through=day).rows
