"""Structured logs: one JSON object per line, the request id on every record, no secrets.

``LOGGING`` in ``config/settings`` wires these pieces: ``RequestContextFilter`` puts the
current request id (and user id) on each record, ``RedactSecretsFilter`` scrubs what must
never reach a log (credentials, card numbers), and ``JsonFormatter`` writes the line that
a log shipper (Loki, Elasticsearch, CloudWatch) parses without a grok pattern.
``LOG_FORMAT=text`` keeps a readable line for a developer's terminal.

The request id lives in a context variable set by ``core.middleware.RequestIdMiddleware``;
it travels to Celery tasks in a message header, so a worker's log lines for a task carry
the id of the request that queued it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import datetime, timezone

from celery import signals

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

TASK_REQUEST_ID_HEADER = "request_id"  # the Celery message header carrying it
REDACTED = "[REDACTED]"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# The request context fields, in the order they appear in a JSON line.
CONTEXT_FIELDS = ("request_id", "user_id", "method", "path", "status", "duration_ms")
# ``extra`` keys whose value is never written, whatever it holds.
_SECRET_KEY_NAMES = re.compile(r"authorization|password|passwd|secret|token|api[_-]?key|cookie|card|cvc|cvv|pan\b", re.I)

_SECRET_PATTERNS = [
    # HTTP credentials as they appear in a header dump or an exception message.
    (re.compile(r"\b(Authorization|Proxy-Authorization|Cookie|Set-Cookie|X-Api-Key)(['\"]?\s*[:=]\s*['\"]?)[^'\"\n;,}]+", re.I),
     r"\1\2" + REDACTED),
    # A credential after its scheme: a run of 8+ token characters with a digit in it (so
    # that "Token authentication failed" stays readable).
    (re.compile(r"\b(Bearer|Token|Device|Basic)\s+(?=[\w.~+/=-]*\d)[\w.~+/=-]{8,}"), r"\1 " + REDACTED),
    # Stripe keys and webhook secrets.
    (re.compile(r"\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]+"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9]+"), REDACTED),
    # Passwords in URLs (postgres://user:password@host).
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1" + REDACTED + "@"),
]
_CARD_CANDIDATE = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return REDACTED if _luhn_valid(digits) else match.group(0)


def redact(text: str) -> str:
    """``text`` without credentials, Stripe keys or anything shaped like a card number
    (13-19 digits passing the Luhn check): such data must never be written to a log."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return _CARD_CANDIDATE.sub(_mask_card, text)


class RequestContextFilter(logging.Filter):
    """Adds the ``request_id`` of the request (or task) being handled. The user id is known
    once the view has authenticated, so it is on the request's own line (middleware)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    """Scrubs secrets from the message, its arguments and the exception text. Runs on the
    handler, so it covers third-party loggers (django.request, celery, zeep) as well."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call; the handler reports it as logging always does
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key in _extra_keys(record):
            if _SECRET_KEY_NAMES.search(key):
                setattr(record, key, REDACTED)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the request
    context fields and any other ``extra`` values that are plain data."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            line[field] = getattr(record, field, None)
        for key in _extra_keys(record):
            if key not in line and key != "request":
                line[key] = _plain(getattr(record, key))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The developer's line, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} [request_id={request_id}]" if request_id else text


def _extra_keys(record: logging.LogRecord) -> list[str]:
    return [key for key in vars(record) if key not in _RECORD_ATTRIBUTES and key not in CONTEXT_FIELDS]


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): REDACTED if _SECRET_KEY_NAMES.search(str(key)) else _plain(item) for key, item in value.items()}
    return str(value)


# --- Celery: the request id travels with the task -----------------------------------------
# Connected when this module is imported, which Django's logging configuration does in
# every process (web, worker, beat) before any task is sent or run.

@signals.before_task_publish.connect(dispatch_uid="core.logging.request_id_publish")
def _request_id_publish(headers: dict | None = None, **kwargs) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id and TASK_REQUEST_ID_HEADER not in headers:
        headers[TASK_REQUEST_ID_HEADER] = request_id


@signals.task_prerun.connect(dispatch_uid="core.logging.request_id_prerun")
def _request_id_prerun(task=None, **kwargs) -> None:
    if task is None or task.request.is_eager:
        return  # an eager task runs inside the caller's request and keeps its id
    request_id = getattr(task.request, TASK_REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(TASK_REQUEST_ID_HEADER)
    request_id_var.set(request_id)  # a worker process starts each task afresh


@signals.setup_logging.connect(dispatch_uid="core.logging.keep_django_logging")
def _keep_django_logging(**kwargs) -> None:
    """Workers and beat log through Django's LOGGING (JSON in production) instead of the
    format Celery would install on the root logger."""
