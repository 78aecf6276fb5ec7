"""Celery entry points for analytics: the scheduled rollups the dashboard reads and the
recommendations' similarity tables."""

from celery import shared_task
from django.utils import timezone

from .services.recommendations import recommendations_rebuild
from .services.rollups import analytics_rollup
from .services.viewing import viewing_rollup


@shared_task
def analytics_rollup_task() -> list[str]:
    """Roll up the months not done yet and recompute the current and previous month (beat:
    hourly; idempotent). Returns the months computed."""
    return [month.isoformat() for month in analytics_rollup(through=timezone.localdate())]


@shared_task
def viewing_rollup_task() -> list[str]:
    """Recompute today's and yesterday's viewing rows (beat: hourly; idempotent)."""
    return [day.isoformat() for day in viewing_rollup(through=timezone.localdate(), days=2)]


@shared_task
def recommendations_rebuild_task() -> dict[str, int]:
    """Rebuild the title similarities and this week's popularity (beat: every 6 hours;
    idempotent). Returns the counts."""
    rebuilt = recommendations_rebuild(today=timezone.localdate())
    return {"customers": rebuilt.customers, "similarities": rebuilt.similarities, "popular_titles": rebuilt.popular_titles}
