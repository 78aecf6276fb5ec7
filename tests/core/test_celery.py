"""Celery for real: a worker consuming from the Redis broker runs our tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from config.celery import app
from core.models import IdempotencyRecord
from core.tasks import idempotency_records_purge_task


@pytest.fixture
def celery_worker():
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test runs the suite with a real Redis broker"
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_purge_task_through_redis(celery_worker):
    old = IdempotencyRecord.objects.create(scope="user:1", key="old", fingerprint="x")
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS + 1))
    fresh = IdempotencyRecord.objects.create(scope="user:1", key="fresh", fingerprint="x")

    result = idempotency_records_purge_task.apply_async(ignore_result=False)

    assert result.get(timeout=20) == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_beat_schedules_the_purge():
    assert settings.CELERY_BEAT_SCHEDULE["purge-idempotency-records"]["task"] == idempotency_records_purge_task.name
