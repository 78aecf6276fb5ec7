"""Pausing Python's cycle collector around a bulk chunk.

A rating chunk (2,000 records, with instant invoices) or a billing-run chunk builds tens of
thousands of short-lived objects: tuples, Decimals, model instances, dicts. Reference
counting frees them as the chunk goes; almost none sit in reference cycles. The cycle
collector, though, counts allocations, not garbage: a chunk sets off many young-generation
collections and one or two full ones, each walking every object the chunk still holds.
Measured in ``bench/rating.py``'s process (start-up objects frozen, as Celery pool
processes freeze theirs, ``config.celery``): 60–85 ms of a ~0.5 s instant-billing chunk.

The analytics monthly rollup is the same case at a larger scale: a model instance per
service and customer of the month (~1.1 million at 55,000 customers), all alive until the
month is written; so are the viewing rollup (the days' views) and the recommendations
rebuild (every customer's interactions).

``cycle_collector_paused`` switches the collector off for the chunk and back on after it
(if it was on): the chunk's few cyclic leftovers wait for the next collection, which the
allocations counted during the chunk set off soon after. Memory is bounded by one chunk's
objects, which it holds anyway. Web requests are not paused: measured, an order's share
of collections is within the noise (a request allocates far less than a chunk).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Run the block with ``gc`` disabled; restore it after, whatever happens."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
