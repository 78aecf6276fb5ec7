import pytest

from billing.demo import demo_billing_load


@pytest.fixture
def billing_scheme(zx_catalog):
    """Company ZX billing: CY VAT 19% on services and the "Normal" scheme billing every
    order at once (replaces the shared world's scheme without usage rules)."""
    return demo_billing_load()["scheme"]


@pytest.fixture
def celery_worker():
    """A real Celery worker (a thread of this process) consuming from the test Redis broker."""
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test runs the suite with a real Redis broker"
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker
