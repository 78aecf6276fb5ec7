"""Dunning: chasing an account whose payment failed or whose invoice is overdue.

A case opens when a card payment for an invoice fails, or when the hourly run finds an
invoice still open ``overdue_after_days`` after it was issued. The active schedule's steps
then run on their day (counted from the opening): RETRY charges the default card for each
open invoice, REMINDER e-mails the customer, REST rests (suspends) the account's effective
subscriptions. Each step runs once per case — claimed by a unique row before it acts, so
two workers never both act — and is recorded (``DunningEvent``) and shown on the customer
page. When nothing is left to pay the case is RESOLVED and the subscriptions it rested
are resumed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AccountsReceivable
from billing.models import Invoice
from core.choices import Channel
from core.exceptions import ApplicationError

from ..models import DunningCase, DunningEvent, DunningSchedule, DunningStep, MethodKind
from ..selectors import invoices_open, payment_method_default

logger = logging.getLogger(__name__)


def dunning_schedule_active() -> DunningSchedule | None:
    return DunningSchedule.objects.filter(is_active=True).first()


def dunning_case_open(*, account: AccountsReceivable, reason: str, now: datetime | None = None) -> DunningCase | None:
    """Open a case for the account (or return the open one). None without an active
    schedule, or when nothing is owed."""
    schedule = dunning_schedule_active()
    if schedule is None or not invoices_open(account=account):
        return None
    existing = DunningCase.objects.filter(account=account, state=DunningCase.State.OPEN).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            case = DunningCase.objects.create(account=account, schedule=schedule, reason=reason[:300], opened_at=now or timezone.now())
            DunningEvent.objects.create(case=case, kind="OPENED", detail=reason[:500])
    except IntegrityError:
        return DunningCase.objects.get(account=account, state=DunningCase.State.OPEN)
    return case


def dunning_resolve_if_paid(*, account: AccountsReceivable) -> DunningCase | None:
    """Close the open case once nothing is left to pay and resume what it rested."""
    case = DunningCase.objects.filter(account=account, state=DunningCase.State.OPEN).first()
    if case is None or invoices_open(account=account):
        return None
    with transaction.atomic():
        case = DunningCase.objects.select_for_update().get(pk=case.pk)
        if case.state != DunningCase.State.OPEN:
            return case
        case.state, case.resolved_at = DunningCase.State.RESOLVED, timezone.now()
        case.save(update_fields=["state", "resolved_at"])
        DunningEvent.objects.create(case=case, kind="RESOLVED", detail="The balance is paid.")
    _resume_rested(case)
    return case


def _resume_rested(case: DunningCase) -> None:
    from subscriptions.models import Subscription, SubscriptionAction
    from subscriptions.services.lifecycle import subscription_end_resting

    rested = (SubscriptionAction.objects.filter(transaction_reference__startswith=f"dunning-{case.pk}-rest-", state="EXECUTED")
              .values_list("subscription_id", flat=True))
    for subscription in Subscription.objects.filter(pk__in=list(rested), state=Subscription.State.IN_RESTING):
        try:
            subscription_end_resting(subscription=subscription, transaction_reference=f"dunning-{case.pk}-resume-{subscription.pk}",
                                     channel=Channel.SYSTEM)
            DunningEvent.objects.create(case=case, kind="RESUMED", detail=f"Subscription {subscription.number} resumed.")
        except ApplicationError as error:
            DunningEvent.objects.create(case=case, kind="RESUME_FAILED", detail=f"{subscription.number}: {error}"[:500])


def dunning_run(*, now: datetime | None = None) -> int:
    """The hourly run: open cases for overdue invoices, resolve paid ones, take due steps.
    Returns the number of steps taken."""
    now = now or timezone.now()
    schedule = dunning_schedule_active()
    if schedule is None:
        return 0
    overdue_before = now - timedelta(days=schedule.overdue_after_days)
    overdue_accounts = (Invoice.objects.filter(state=Invoice.State.POSTED, issued_at__lt=overdue_before)
                        .exclude(account__dunning_cases__state=DunningCase.State.OPEN).values_list("account_id", flat=True).distinct())
    for account in AccountsReceivable.objects.filter(pk__in=list(overdue_accounts)):
        overdue = [invoice for invoice, _ in invoices_open(account=account) if invoice.issued_at < overdue_before]
        if overdue:
            dunning_case_open(account=account, reason=f"Invoice {overdue[0].number} is overdue.", now=now)
    taken = 0
    for case in DunningCase.objects.filter(state=DunningCase.State.OPEN).select_related("account", "schedule"):
        if dunning_resolve_if_paid(account=case.account) is not None:
            continue
        days = (now - case.opened_at) // timedelta(days=1)
        for step in case.schedule.steps.filter(day__lte=days).exclude(events__case=case):
            taken += _step_take(case, step)
    return taken


def _step_take(case: DunningCase, step: DunningStep) -> int:
    try:
        with transaction.atomic():
            event = DunningEvent.objects.create(case=case, step=step, kind=step.action, detail="Started.")
    except IntegrityError:
        return 0  # another worker took it
    try:
        detail = STEP_ACTIONS[step.action](case)
    except ApplicationError as error:
        detail = f"Failed: {error}"
    DunningEvent.objects.filter(pk=event.pk).update(detail=detail[:500])
    return 1


def _retry(case: DunningCase) -> str:
    from .collection import payment_card_charge

    method = payment_method_default(account=case.account)
    if method is None or method.kind != MethodKind.CARD:
        return "No saved card to retry."
    outcomes = []
    for invoice, amount in invoices_open(account=case.account):
        payment = payment_card_charge(account=case.account, amount=amount, method=method, invoice=invoice, channel=Channel.SYSTEM)
        outcomes.append(f"{invoice.number}: {payment.get_state_display()}")
    dunning_resolve_if_paid(account=case.account)
    return "Retried " + ", ".join(outcomes) + "."


def _remind(case: DunningCase) -> str:
    email = case.account.contact.email
    if not email:
        return "No e-mail address to remind."
    open_invoices = invoices_open(account=case.account)
    total = sum((amount for _, amount in open_invoices), 0)
    lines = "\n".join(f"  {invoice.number} issued {invoice.issued_at:%Y-%m-%d}: {amount} {invoice.currency}"
                      for invoice, amount in open_invoices)
    send_mail(
        subject=f"{settings.OPERATOR_NAME}: payment reminder for account {case.account.number}",
        message=(f"Dear customer,\n\nwe have not received payment for:\n{lines}\n\nTotal due: {total} {case.account.currency}.\n"
                 "Please pay in the portal or update your card, so that your services are not suspended.\n"),
        from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[email])
    return f"Reminder sent to {email} ({total} {case.account.currency} due)."


def _rest(case: DunningCase) -> str:
    from subscriptions.models import Subscription
    from subscriptions.services.lifecycle import subscription_rest

    rested, refused = [], []
    for subscription in Subscription.objects.filter(account=case.account, state=Subscription.State.EFFECTIVE):
        try:
            subscription_rest(subscription=subscription, transaction_reference=f"dunning-{case.pk}-rest-{subscription.pk}",
                              channel=Channel.SYSTEM)
            rested.append(subscription.number)
        except ApplicationError as error:
            refused.append(f"{subscription.number} ({error})")
    detail = f"Rested {', '.join(rested) or 'nothing'}."
    return detail + (f" Refused: {'; '.join(refused)}." if refused else "")


STEP_ACTIONS = {DunningStep.Action.RETRY: _retry, DunningStep.Action.REMINDER: _remind, DunningStep.Action.REST: _rest}

