"""Reads for provisioning: what the platform should hold, the outbox's backlog, dead letters."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from core.choices import LifecycleState

from .models import ProvisioningProvider, ProvisioningRequest

State = ProvisioningRequest.State
Kind = ProvisioningRequest.Kind


def provider_default() -> ProvisioningProvider | None:
    """The provider of commands that concern no catalog (accounts, devices)."""
    return ProvisioningProvider.objects.filter(state=LifecycleState.EFFECTIVE).order_by("pk").first()


def provisioning_entry_for(product):
    """The product's entry in an EFFECTIVE usage catalog, which names its platform id and provider."""
    from catalogs.models import UsageService

    return (UsageService.objects.select_related("catalog__provider")
            .filter(product=product, catalog__state=LifecycleState.EFFECTIVE).exclude(provisioning_id="")
            .order_by("catalog__priority", "pk").first())


def provisioning_id_for(product) -> str:
    """The platform knows a product by its provisioning id when a usage catalog gives one,
    otherwise by our product code."""
    entry = provisioning_entry_for(product)
    return entry.provisioning_id if entry else product.code


def account_known_to_platform(account) -> bool:
    """A CREATE_ACCOUNT was written (and not cancelled): later account commands make sense."""
    return ProvisioningRequest.objects.filter(account=account, kind=Kind.CREATE_ACCOUNT).exclude(state=State.CANCELLED).exists()


def requests_due(*, now: datetime, account_id: int | None = None) -> QuerySet[ProvisioningRequest]:
    """PENDING requests whose time has come and that head their account's queue, oldest
    first. The queue is the account's requests in the order they were written, except that
    CREATE_ACCOUNT goes first: nothing can be done for an account the platform does not
    have (a decoder installed on a DRAFT subscription is written before its activation).

    A command for a DRAFT subscription of an account the platform was never asked to create
    (no CREATE_ACCOUNT written, or only cancelled ones) waits for the activation, which
    writes the CREATE_ACCOUNT: its after-commit task would otherwise send it at once and the
    platform would refuse it (UNKNOWN_ACCOUNT). When the CREATE_ACCOUNT completes, its own
    task drains the account's queue and the waiting command goes next."""
    from subscriptions.models import Subscription

    pending = ProvisioningRequest.objects.filter(account=OuterRef("account"), state=State.PENDING)
    earlier = pending.filter(pk__lt=OuterRef("pk"))
    create = Q(kind=Kind.CREATE_ACCOUNT)
    asked_to_create = ProvisioningRequest.objects.filter(account=OuterRef("account"), kind=Kind.CREATE_ACCOUNT).exclude(
        state=State.CANCELLED)
    waits_for_activation = Q(subscription__state=Subscription.State.DRAFT) & ~Exists(asked_to_create)
    queryset = ProvisioningRequest.objects.filter(state=State.PENDING, next_attempt_at__lte=now).filter(
        (create & ~Exists(earlier.filter(create)))
        | (~create & ~Exists(earlier) & ~Exists(pending.filter(create)) & ~waits_for_activation)
    )
    if account_id is not None:
        queryset = queryset.filter(account_id=account_id)
    return queryset.order_by("pk")


def dead_letters() -> QuerySet[ProvisioningRequest]:
    """REJECTED requests (refused by the platform, or retries exhausted): staff retry or cancel them."""
    return ProvisioningRequest.objects.filter(state=State.REJECTED).select_related("account", "subscription", "provider")


def expected_entitlements(account, *, now: datetime) -> dict[str, tuple[str, str | None]]:
    """What the platform should hold for ``account``: provisioning id -> (SUBSCRIPTION, None)
    for its effective termed services, (PPV, until) for its rentals still running."""
    from subscriptions.models import Rental, SubscriptionService

    expected: dict[str, tuple[str, str | None]] = {}
    services = (SubscriptionService.objects.select_related("product")
                .filter(subscription__account=account, subscription__state="EFFECTIVE", state="EFFECTIVE"))
    for service in services:
        expected[provisioning_id_for(service.product)] = ("SUBSCRIPTION", None)
    rentals = Rental.objects.select_related("udr__usage_service").filter(account=account, ends_at__gt=now).order_by("ends_at")
    for rental in rentals:
        usage_service = rental.udr.usage_service
        if usage_service is not None and usage_service.provisioning_id and usage_service.provisioning_id not in expected:
            expected[usage_service.provisioning_id] = ("PPV", rental.ends_at.isoformat())
    return expected


def accounts_on_platform(provider: ProvisioningProvider):
    """Accounts the platform created for us (their CREATE_ACCOUNT completed)."""
    from accounts.models import AccountsReceivable

    created = ProvisioningRequest.objects.filter(account=OuterRef("pk"), kind=Kind.CREATE_ACCOUNT, state=State.COMPLETED,
                                                 provider=provider)
    return AccountsReceivable.objects.filter(Exists(created)).order_by("pk")
