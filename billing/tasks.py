"""Celery entry points for billing: bulk UDR rating.

Throughput scales with workers: each ``udr_rating_task`` claims its chunks with
``FOR UPDATE SKIP LOCKED``, so running more worker processes (or dispatching more tasks)
rates more records per second and never rates one twice.
"""

import math
import time

from celery import shared_task

from .models import UsageDetailRecord
from .services.rating_runs import DEFAULT_CHUNK, udr_rating_claim_and_rate

TIME_BUDGET_SECONDS = 50.0
PARALLEL_TASKS = 4


@shared_task
def udr_rating_task(chunk_size: int = DEFAULT_CHUNK, time_budget_seconds: float = TIME_BUDGET_SECONDS) -> int:
    """Rate chunks until none is left (or other workers hold the rest) or the time budget is
    spent, so a task never outlives the next dispatch by much. Returns records processed."""
    deadline = time.monotonic() + time_budget_seconds
    done = 0
    while time.monotonic() < deadline:
        processed = udr_rating_claim_and_rate(chunk_size=chunk_size)
        if not processed:
            break
        done += processed
    return done


@shared_task
def udr_rating_dispatch_task(parallel: int = PARALLEL_TASKS, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Start enough rating tasks for the backlog, at most ``parallel`` (beat: every minute).
    Returns how many were started."""
    pending = UsageDetailRecord.objects.filter(state=UsageDetailRecord.State.PENDING).count()
    tasks = min(parallel, math.ceil(pending / chunk_size))
    for _ in range(tasks):
        udr_rating_task.delay(chunk_size=chunk_size)
    return tasks
