"""Settings shared by every environment.

Split: ``base`` (this file, everything read from the environment), ``local`` (a developer's
machine and ``make run``), ``production`` (behind a TLS-terminating proxy; passes
``manage.py check --deploy``) and ``test`` (the pytest suite).

With nothing configured the project runs embedded: a SQLite file under ``DATA_DIR`` and
Celery tasks executed eagerly in-process. ``DATABASE_URL`` switches to PostgreSQL and
``REDIS_URL`` to a real Celery broker and a shared cache (throttling, idempotency locks).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data")))

SECRET_KEY = env_str("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "core",
    "accounts",
    "catalogs",
    "subscriptions",
    "billing",
    "payments",
    "provisioning",
    "analytics",
]

MIDDLEWARE = [
    # First: every response (redirects and errors too) gets X-Request-ID, a log line and a latency.
    "core.middleware.RequestIdMiddleware",
    "core.middleware.RequestMetricsMiddleware",
    "core.middleware.ReferenceVersionsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# PostgreSQL is the system of record; SQLite is the zero-configuration default.
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, checking a reused connection without a round trip (core/db/postgresql).
        DATABASES["default"]["ENGINE"] = "core.db.postgresql"
        # A database that does not answer fails a request (and /readyz) in seconds, not minutes.
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
        # The few hand-written queries on every request (core.sql.fetch_one: API token, device
        # key, entitlement check, reference versions) are prepared once per connection instead
        # of planned on every request. The ORM's queries never are (they bind client-side).
        # Behind PgBouncer in transaction pooling, set DB_PREPARED_STATEMENTS=false unless it
        # tracks prepared statements (max_prepared_statements, PgBouncer 1.21+).
        if env_bool("DB_PREPARED_STATEMENTS", True):
            DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 0
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # SQLite serialises writers; wait instead of failing with "database is locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
    # Covering indexes (INCLUDE) are PostgreSQL's; SQLite builds them without the extra columns.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DATABASES["default"]["ATOMIC_REQUESTS"] = False  # each service owns its transaction
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, Celery broker -------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
# Timeouts: a Redis that hangs makes cache calls and task publishing fail fast instead of
# holding every web worker (the cache, the Celery broker and result connections alike).
REDIS_CONNECT_TIMEOUT = env_int("REDIS_CONNECT_TIMEOUT", 2)
REDIS_SOCKET_TIMEOUT = env_int("REDIS_SOCKET_TIMEOUT", 5)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
# Without a broker the tasks run in the calling process, so `make run` needs no services.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is redelivered, not lost
# Nothing in the product reads a task's return value (progress and outcomes live in the
# database), so none is written to Redis. A caller that wants one asks for it:
# ``task.apply_async(ignore_result=False)``.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # workers log through LOGGING below (JSON in production)
# Redis going away: the worker and beat retry the connection forever, at startup too, and
# carry on when it is back (Celery's default gives up after 100 attempts, about 46 minutes,
# and the process exits). The worker's consumer also survives losing Redis while a task
# acknowledged late is running (see config.celery.Consumer). Publishing is not retried
# this way: a web request's publish fails at once when Redis refuses connections, and after
# a few socket timeouts when it hangs (core.queueing logs it).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CONSUMER = "config.celery:Consumer"
# A task running when the connection drops finishes its work (every task is idempotent and
# its rows are the record) rather than being killed half-way; its message cannot be
# acknowledged on the lost connection, so Redis redelivers it if it still has it.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# No retry_on_timeout: a command that timed out is not sent again, so a hanging Redis costs a
# publishing request one socket timeout per attempt, not two. Keepalive notices a Redis that
# vanished without closing the connection (a host or a network gone).
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT,
                                   "socket_keepalive": True}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_CONNECT_TIMEOUT  # the result backend (default: none, and 120 s)
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_SOCKET_TIMEOUT
CELERY_REDIS_SOCKET_KEEPALIVE = True
CELERY_BEAT_SCHEDULE: dict = {
    "purge-idempotency-records": {"task": "core.tasks.idempotency_records_purge_task", "schedule": 3600.0},
    "purge-pairing-codes": {"task": "subscriptions.tasks.pairing_codes_purge_task", "schedule": 3600.0},
    # A run missed while no worker was up is dropped (the next one picks the actions up).
    # Dunning: retries, reminders and resting of customers with overdue balances.
    "run-dunning": {"task": "payments.tasks.dunning_run_task", "schedule": 3600.0, "options": {"expires": 3500.0}},
    "run-due-subscription-actions": {"task": "subscriptions.tasks.subscription_actions_run_due_task", "schedule": 60.0,
                                     "options": {"expires": 55.0}},
    # Bulk UDR rating: starts rating tasks for the PENDING backlog (more workers, more throughput).
    "dispatch-udr-rating": {"task": "billing.tasks.udr_rating_dispatch_task", "schedule": 60.0, "options": {"expires": 55.0}},
    # Revenue recognition through yesterday; hourly so a missed night is caught up (idempotent).
    "recognize-revenue": {"task": "billing.tasks.revenue_recognize_task", "schedule": 3600.0, "options": {"expires": 3500.0}},
    # Provisioning: send due (new or retried) requests; compare entitlements with Nagra nightly.
    "dispatch-provisioning-requests": {"task": "provisioning.tasks.provisioning_requests_dispatch_task", "schedule": 30.0,
                                       "options": {"expires": 25.0}},
    "reconcile-provisioning": {"task": "provisioning.tasks.provisioning_reconcile_task", "schedule": 86400.0},
    # Billing runs a worker died in carry on (chunks in progress elsewhere are skipped).
    "resume-billing-runs": {"task": "billing.tasks.billing_runs_resume_task", "schedule": 300.0, "options": {"expires": 290.0}},
    # Analytics rollups for the dashboard (idempotent; the current and previous month / day are recomputed).
    "rollup-analytics": {"task": "analytics.tasks.analytics_rollup_task", "schedule": 3600.0, "options": {"expires": 3500.0}},
    "rollup-viewing": {"task": "analytics.tasks.viewing_rollup_task", "schedule": 3600.0, "options": {"expires": 3500.0}},
    "rebuild-recommendations": {"task": "analytics.tasks.recommendations_rebuild_task", "schedule": 21600.0, "options": {"expires": 21000.0}},
}

# --- Auth ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- Internationalisation --------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("el", "Greek"), ("fr", "French"), ("de", "German"), ("es", "Spanish")]
# The operator's wall clock: usage time windows ("00:01-06:59") are read in this zone.
TIME_ZONE = env_str("TIME_ZONE", "Europe/Nicosia")
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# --- Email -----------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "billing@ott.example")

# --- The operator ----------------------------------------------------------------------
OPERATOR_NAME = env_str("OPERATOR_NAME", "Company ZX")
# Currencies an account may be opened in; the first is the default.
CURRENCIES = env_list("CURRENCIES", ["EUR"])
# Phone numbers are stored in E.164; a number typed without a country code gets this one.
DEFAULT_PHONE_COUNTRY_CODE = env_str("DEFAULT_PHONE_COUNTRY_CODE", "357")
DEFAULT_COUNTRY = env_str("DEFAULT_COUNTRY", "CY")

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.PortalTokenAuthentication",  # DRF's Token, in one query
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.DefaultPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": env_str("THROTTLE_LOGIN_IP", "30/min"),
        "login_username": env_str("THROTTLE_LOGIN_USERNAME", "5/min"),
        "signup": env_str("THROTTLE_SIGNUP", "20/hour"),
        "pairing_start": env_str("THROTTLE_PAIRING_START", "30/hour"),
        "pairing_claim": env_str("THROTTLE_PAIRING_CLAIM", "30/hour"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Admin log-in throttling (accounts/admin_login.py, docs/security.md): after this many failed
# attempts for one login name, or from one client address, within the window, the admin login
# refuses every attempt (even with the right password) until the window has passed.
ADMIN_LOGIN_FAILURES_PER_USERNAME = env_int("ADMIN_LOGIN_FAILURES_PER_USERNAME", 5)
ADMIN_LOGIN_FAILURES_PER_IP = env_int("ADMIN_LOGIN_FAILURES_PER_IP", 20)
ADMIN_LOGIN_WINDOW_SECONDS = env_int("ADMIN_LOGIN_WINDOW_SECONDS", 900)

SPECTACULAR_SETTINGS = {
    "TITLE": "OTT back office API",
    "DESCRIPTION": (
        "Portal and device API of the OTT back office. Portal users authenticate with "
        "`Authorization: Token <token>` (from `POST /api/v1/auth/login/`); devices with "
        "`Authorization: Device <key>`. Every 4xx response has the body "
        '`{"error": {"code", "message", "fields"}}`. POSTs accept an `Idempotency-Key` header.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ContactKindEnum": "accounts.models.Contact.Kind",
        "AddressKindEnum": "accounts.models.Address.Kind",
        "AccountEventKindEnum": "accounts.models.AccountEvent.Kind",
        "AccountStateEnum": "accounts.models.AccountsReceivable.State",
        "SubscriptionStateEnum": "subscriptions.models.Subscription.State",
        "UsageRecordStateEnum": "billing.models.UsageDetailRecord.State",
        "InvoiceStateEnum": "billing.models.Invoice.State",
        "PaymentMethodKindEnum": "payments.models.MethodKind",
        "PaymentStateEnum": "payments.models.Payment.State",
        "PaymentMethodStateEnum": "payments.models.PaymentMethod.State",
    },
    # Swagger UI served from our own static files (drf-spectacular-sidecar), not a CDN.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.api.schema.paginated_lists_document_invalid_page"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# PPV rentals, devices and streams.
RENTAL_HOURS = env_int("RENTAL_HOURS", 48)
DEVICE_LIMIT_DEFAULT = env_int("DEVICE_LIMIT_DEFAULT", 5)
STREAM_LIMIT_DEFAULT = env_int("STREAM_LIMIT_DEFAULT", 2)
DEVICE_SLOT_COOLDOWN_HOURS = env_int("DEVICE_SLOT_COOLDOWN_HOURS", 24)
STREAM_STALE_SECONDS = env_int("STREAM_STALE_SECONDS", 120)
PAIRING_CODE_MINUTES = env_int("PAIRING_CODE_MINUTES", 10)

# Nagra provisioning (docs/provisioning.md). NAGRA_ENDPOINT, when not empty, is where every
# Nagra provider's commands go; the default is the local simulator (`manage.py
# nagra_simulator --port 8070`), so a laptop never talks to a real platform and, with no
# simulator running, requests stay PENDING with a clear error. Set NAGRA_ENDPOINT="" to use
# each provider's own endpoint (production).
NAGRA_ENDPOINT = env_str("NAGRA_ENDPOINT", "http://127.0.0.1:8070/smsservice_1.2")
NAGRA_CONNECT_TIMEOUT = float(env_str("NAGRA_CONNECT_TIMEOUT", "3"))
NAGRA_OPERATION_TIMEOUT = float(env_str("NAGRA_OPERATION_TIMEOUT", "10"))
NAGRA_RETRY_BASE_SECONDS = env_int("NAGRA_RETRY_BASE_SECONDS", 30)
NAGRA_RETRY_MAX_SECONDS = env_int("NAGRA_RETRY_MAX_SECONDS", 3600)
NAGRA_RETRY_MAX_ATTEMPTS = env_int("NAGRA_RETRY_MAX_ATTEMPTS", 20)
# Usage records a rating task claims and rates per transaction (docs/rating.md: larger
# chunks rate faster and hold their row locks longer).
RATING_CHUNK_SIZE = env_int("RATING_CHUNK_SIZE", 2000)
PROVISIONING_CREDENTIALS = {"NAGRA": {"username": env_str("NAGRA_USERNAME", ""), "password": env_str("NAGRA_PASSWORD", "")}}

# How long a stored Idempotency-Key response is replayed.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)

# --- Stripe (payments/gateways/stripe.py) ------------------------------------------------
# The API version is pinned: Stripe changes object shapes between versions, and ours must
# not move under us when the library is upgraded. STRIPE_API_BASE points tests at localstripe.
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "sk_test_not_configured")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY", "pk_test_not_configured")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "whsec_not_configured")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)
STRIPE_API_VERSION = env_str("STRIPE_API_VERSION", "2026-10-28.endive")
STRIPE_TIMEOUT_SECONDS = float(env_str("STRIPE_TIMEOUT_SECONDS", "20"))  # per attempt (2 retries): a hung Stripe must not hold a web worker for minutes

# --- Logs, health, metrics (docs/operations.md) ---------------------------------------------
# LOG_FORMAT: "text" (a readable line; the default here) or "json" (one object per line with
# request_id, user_id, path, status, duration_ms; the production default). Secrets and card
# numbers are scrubbed from every line (core/logging.py).
LOG_FORMAT = env_str("LOG_FORMAT", "text")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "core.logging.RequestContextFilter"},
        "redact_secrets": {"()": "core.logging.RedactSecretsFilter"},
    },
    "formatters": {"text": {"()": "core.logging.TextFormatter"}, "json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["request_context", "redact_secrets"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# /readyz: how long each check (database, cache, broker) may take.
HEALTH_CHECK_TIMEOUT_SECONDS = float(env_str("HEALTH_CHECK_TIMEOUT_SECONDS", "2"))
# /metrics is answered to these addresses or networks (the socket's address, never a
# forwarded header), or to "Authorization: Bearer <METRICS_TOKEN>" when a token is set.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
for _network in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_network!r} is not an address or network.") from _error
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Celery queues whose depth is reported besides those Celery itself is configured with.
METRICS_CELERY_QUEUES = env_list("METRICS_CELERY_QUEUES", [])
