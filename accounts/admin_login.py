"""The admin log-in, throttled per login name and per client address.

The API login has DRF throttles (``accounts/api/throttling.py``); staff log in through the
admin's form, which Django does not throttle at all. Staff accounts can change prices,
issue credit notes and refund payments, so guessing their passwords must be slow.

Failed attempts are counted in the Django cache (Redis in production, so every web process
sees the same counters) under two keys: the login name and the client address. Once either
reaches its limit within the window, every attempt is refused with HTTP 429 — even with the
right password, otherwise the limit would only slow an attacker down until the right guess.
A successful log-in clears the login name's counter; the address counter is left to expire,
so one valid account cannot be used to reset an address that is guessing at other accounts.
The refusal says the same thing whichever counter tripped, so it reveals nothing about
which login names exist.
"""

from __future__ import annotations

import hashlib
import logging

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

REFUSED_MESSAGE = (
    "Too many failed log-in attempts. Wait {minutes} minutes and try again, "
    "or ask an administrator to reset your password."
)


def client_address(request: HttpRequest) -> str:
    """The caller's address as the API throttles see it (``NUM_PROXIES`` aware)."""
    return BaseThrottle().get_ident(request)


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"admin-login-failures:{kind}:{digest}"


def _keys(*, username: str, address: str) -> dict[str, tuple[str, int]]:
    """``{kind: (cache key, limit)}`` for the counters this attempt is measured against."""
    keys = {"address": (_key("address", address), settings.ADMIN_LOGIN_FAILURES_PER_IP)}
    if username.strip():
        keys["username"] = (_key("username", username), settings.ADMIN_LOGIN_FAILURES_PER_USERNAME)
    return keys


def admin_login_blocked(*, username: str, address: str) -> bool:
    """Whether the next attempt for this login name or from this address must be refused."""
    keys = _keys(username=username, address=address)
    counts = cache.get_many([key for key, _limit in keys.values()])
    return any(counts.get(key, 0) >= limit for key, limit in keys.values())


def admin_login_failure_record(*, username: str, address: str) -> None:
    """Count one failed attempt against the login name and the address.

    The window starts at the first failure (``cache.add``) and is not extended by later ones.
    """
    for key, _limit in _keys(username=username, address=address).values():
        cache.add(key, 0, timeout=settings.ADMIN_LOGIN_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr: start a new window
            cache.set(key, 1, timeout=settings.ADMIN_LOGIN_WINDOW_SECONDS)


def admin_login_success_record(*, username: str) -> None:
    """A successful log-in forgives the login name's earlier typos."""
    cache.delete(_key("username", username))


class _RefusedForm(AdminAuthenticationForm):
    """The admin's log-in form showing the refusal, without checking the password."""

    def clean(self):
        minutes = max(1, settings.ADMIN_LOGIN_WINDOW_SECONDS // 60)
        raise forms.ValidationError(REFUSED_MESSAGE.format(minutes=minutes), code="throttled")


def _refused(request: HttpRequest) -> HttpResponse:
    form = _RefusedForm(request, data=request.POST)
    form.is_valid()
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
        "form": form,
        REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME, request.GET.get(REDIRECT_FIELD_NAME, "")),
    }
    return TemplateResponse(request, admin.site.login_template or "admin/login.html", context, status=429)


@sensitive_post_parameters()
@csrf_protect
@never_cache
def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """``/admin/login/``: Django's admin log-in behind the failure counters."""
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    username = str(request.POST.get("username", ""))
    address = client_address(request)
    if admin_login_blocked(username=username, address=address):
        logger.warning("admin login refused (throttled)", extra={"username": username, "address": address})
        return _refused(request)
    response = admin.site.login(request, extra_context)
    if response.status_code == 302 and request.user.is_authenticated:
        admin_login_success_record(username=username)
    else:
        admin_login_failure_record(username=username, address=address)
    return response
