from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from core.health import readiness_checks
from core.metrics import metrics_access_allowed, metrics_exposition


@never_cache
def healthz(request):
    """Liveness for load balancers: the process answers and reaches its database. It does
    not ask Redis: web requests that need no cache or task keep working while Redis
    restarts, and restarting this process would not bring Redis back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: database, cache and Celery broker, each within HEALTH_CHECK_TIMEOUT_SECONDS.
    200 when all answer; 503 naming the ones that did not (for rollouts and alerting)."""
    results = readiness_checks()
    failed = [result.name for result in results if not result.ok]
    body = {"status": "fail" if failed else "ok", "checks": {result.name: result.as_dict() for result in results}}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


@never_cache
def metrics(request):
    """Prometheus exposition; from METRICS_ALLOWED_IPS or with the METRICS_TOKEN bearer token."""
    if not metrics_access_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)
