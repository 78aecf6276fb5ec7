"""Usage service catalogs: the definition, catalogs, their usage services and tiers.

Life cycle (CRM.COM's): DRAFT → EFFECTIVE ⇄ NOT_EFFECTIVE, DRAFT → CANCELLED. Each
transition is an ``Action`` with restrictions (states it may start from), validations
(every reason reported at once) and processing. A catalog is edited while DRAFT or
NOT_EFFECTIVE, or while EFFECTIVE if no usage has been rated against it yet; once usage
(UDRs) refers to it, it is *versioned*: ``usage_catalog_revise`` copies it into a new DRAFT
version, and setting that version EFFECTIVE retires the old one, so every UDR keeps
pointing at the prices it was rated with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.actions import Cancel, SetEffective, SetNotEffective, actions_by_code
from core.choices import Channel, LifecycleState
from core.exceptions import ApplicationError, ValidationFailed
from core.validation import model_errors
from core.services import audit_changes, audit_record

from ..models import (
    DefinitionDefaultRate,
    DefinitionDefaultTier,
    Product,
    ProductType,
    UsageService,
    UsageServiceCatalog,
    UsageServiceCatalogDefinition,
    UsageTier,
)

EFFECTIVE, DRAFT, NOT_EFFECTIVE, CANCELLED = (
    LifecycleState.EFFECTIVE, LifecycleState.DRAFT, LifecycleState.NOT_EFFECTIVE, LifecycleState.CANCELLED,
)
RATE_QUANTUM = Decimal("0.0001")

Tier = dict[str, Any]  # {"rate": Decimal, "start_time": time, "end_time": time}


# --- validation helpers ----------------------------------------------------------------

def _rate(value: Any, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    try:
        rate = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        errors.setdefault(field, []).append(f"{value!r} is not an amount.")
        return None
    if not rate.is_finite() or rate < 0:
        errors.setdefault(field, []).append("A rate must be zero or more.")
        return None
    if rate != rate.quantize(RATE_QUANTUM):
        errors.setdefault(field, []).append("A rate has at most 4 decimals.")
        return None
    return rate.quantize(RATE_QUANTUM)


def tiers_clean(tiers: Iterable[Tier], *, field: str = "tiers") -> list[Tier]:
    """Check a list of tiered rates: each needs a rate and a whole-minute window, and no two
    windows may overlap (so every moment of a day has exactly one price)."""
    from ..rating import windows_overlap

    errors: dict[str, list[str]] = {}
    cleaned: list[Tier] = []
    for number, tier in enumerate(tiers, start=1):
        label = f"Tier {number}"
        raw_rate = tier.get("rate")
        rate = None
        if raw_rate in (None, ""):
            errors.setdefault(field, []).append(f"{label} needs a rate.")
        else:
            rate = _rate(raw_rate, field, errors)
        start, end = tier.get("start_time"), tier.get("end_time")
        if not isinstance(start, time) or not isinstance(end, time):
            errors.setdefault(field, []).append(f"{label} needs a start and an end time (HH:MM).")
            continue
        if start.second or start.microsecond or end.second or end.microsecond:
            errors.setdefault(field, []).append(f"{label}: windows are whole minutes (HH:MM).")
            continue
        cleaned.append({"rate": rate, "start_time": start, "end_time": end})
    for i, first in enumerate(cleaned):
        for second in cleaned[i + 1:]:
            if windows_overlap(first["start_time"], first["end_time"], second["start_time"], second["end_time"]):
                errors.setdefault(field, []).append(
                    f"Tiers {first['start_time']:%H:%M}–{first['end_time']:%H:%M} and "
                    f"{second['start_time']:%H:%M}–{second['end_time']:%H:%M} overlap."
                )
    if errors:
        raise ValidationFailed("The tiered rates are not valid.", fields=errors)
    return cleaned


def _tiers_of(obj) -> list[Tier]:
    return [{"rate": t.rate, "start_time": t.start_time, "end_time": t.end_time} for t in obj.tiers.order_by("start_time")]


def tiers_text(tiers: Sequence[Tier]) -> str:
    return ", ".join(f"{Decimal(t['rate']):.2f}@{t['start_time']:%H:%M}-{t['end_time']:%H:%M}" for t in tiers)


# --- the definition --------------------------------------------------------------------

def usage_definition_create(
    *, name: str, usage_service_types: Iterable[ProductType] = (), providers: Iterable = (),
    performed_by=None, channel: str = Channel.CALL_CENTER,
) -> UsageServiceCatalogDefinition:
    definition = UsageServiceCatalogDefinition(name=(name or "").strip())
    errors: dict[str, list[str]] = {}
    model_errors(definition, errors, validate_unique=True, validate_constraints=True)
    types = list(usage_service_types)
    wrong = [t.name for t in types if t.service_type != ProductType.ServiceType.USAGE]
    if wrong:
        errors.setdefault("usage_service_types", []).append(f"Not usage service types: {', '.join(wrong)}.")
    if errors:
        raise ValidationFailed("The definition is not valid.", fields=errors)
    with transaction.atomic():
        definition.save()
        definition.usage_service_types.set(types)
        definition.providers.set(list(providers))
        audit_record(target=definition, action="created", changes={"name": [None, definition.name]},
                     performed_by=performed_by, channel=channel)
    return definition


def usage_definition_default_rate_set(
    *, definition: UsageServiceCatalogDefinition, product_type: ProductType, base_rate, tiers: Iterable[Tier] = (),
    performed_by=None, channel: str = Channel.CALL_CENTER,
) -> DefinitionDefaultRate:
    """Set the base rate and tiers new catalog entries of ``product_type`` start from."""
    errors: dict[str, list[str]] = {}
    rate = _rate(base_rate, "base_rate", errors)
    if not definition.usage_service_types.filter(pk=product_type.pk).exists():
        errors.setdefault("product_type", []).append(f"{product_type} is not an allowed usage service type of this definition.")
    try:
        cleaned = tiers_clean(tiers)
    except ValidationFailed as error:
        for name, messages in error.fields.items():
            errors.setdefault(name, []).extend(messages)
        cleaned = []
    if errors:
        raise ValidationFailed("The default rate is not valid.", fields=errors)
    with transaction.atomic():
        default, created = DefinitionDefaultRate.objects.select_for_update().get_or_create(
            definition=definition, product_type=product_type, defaults={"base_rate": rate}
        )
        # A new default has no "before": its rate is created with the row, and must still be audited.
        before = {} if created else {"base_rate": default.base_rate, "tiers": tiers_text(_tiers_of(default))}
        default.base_rate = rate
        default.save()
        default.tiers.all().delete()
        DefinitionDefaultTier.objects.bulk_create(DefinitionDefaultTier(default_rate=default, **tier) for tier in cleaned)
        changes = audit_changes(before, {"base_rate": rate, "tiers": tiers_text(cleaned)})
        if changes:
            audit_record(target=definition, action=f"default rate for {product_type}", changes=changes,
                         performed_by=performed_by, channel=channel)
    return default


def usage_definition_effective() -> UsageServiceCatalogDefinition | None:
    return UsageServiceCatalogDefinition.objects.filter(state=EFFECTIVE).first()


class DefinitionSetEffective(SetEffective):
    def validate(self, definition, **params):
        if not definition.usage_service_types.exists():
            yield "Choose at least one allowed usage service type."
        if not definition.providers.exists():
            yield "Choose at least one allowed provisioning provider."
        other = UsageServiceCatalogDefinition.objects.filter(state=EFFECTIVE).exclude(pk=definition.pk).first()
        if other is not None:
            yield f"Only one definition may be effective: set '{other}' not effective first."


DEFINITION_ACTIONS = actions_by_code(DefinitionSetEffective, SetNotEffective, Cancel)


def usage_definition_act(*, definition: UsageServiceCatalogDefinition, action: str, performed_by=None,
                         channel: str = Channel.CALL_CENTER) -> UsageServiceCatalogDefinition:
    return DEFINITION_ACTIONS[action].execute(definition, performed_by=performed_by, channel=channel)


# --- catalogs --------------------------------------------------------------------------

CATALOG_FIELDS = ("name", "provider", "currency", "valid_from", "valid_until", "priority")


def usage_catalog_is_in_use(catalog: UsageServiceCatalog) -> bool:
    """Has usage been rated against this catalog? (UDRs point at it as ``udrs``.)"""
    related = getattr(catalog, "udrs", None)
    return related is not None and related.exists()


def _ensure_editable(catalog: UsageServiceCatalog) -> None:
    if catalog.state == CANCELLED:
        raise ApplicationError("A cancelled catalog cannot be edited.", code="catalog_not_editable")
    if catalog.state == EFFECTIVE and usage_catalog_is_in_use(catalog):
        raise ApplicationError(
            "Usage has already been rated with this catalog, so it is versioned rather than edited: "
            "create a new version, edit it and set it effective.",
            code="catalog_in_use",
        )


def _catalog_lock(catalog: UsageServiceCatalog) -> UsageServiceCatalog:
    return UsageServiceCatalog.objects.select_for_update().get(pk=catalog.pk)


def usage_catalog_create(
    *, name: str, provider=None, currency: str = "EUR", valid_from=None, valid_until=None, priority: int = 100,
    classifications: Iterable = (), required_services: Iterable[Product] = (),
    performed_by=None, channel: str = Channel.CALL_CENTER,
) -> UsageServiceCatalog:
    """A new DRAFT catalog under the effective definition (its first allowed provider by default)."""
    definition = usage_definition_effective()
    if definition is None:
        raise ApplicationError("No usage service catalog definition is effective: set one effective first.",
                               code="no_effective_definition")
    provider = provider or definition.providers.first()
    catalog = UsageServiceCatalog(name=(name or "").strip(), definition=definition, provider=provider, currency=currency,
                                  valid_from=valid_from, valid_until=valid_until, priority=priority)
    errors: dict[str, list[str]] = {}
    model_errors(catalog, errors, exclude=["definition"], validate_unique=True, validate_constraints=True)
    if provider is not None and not definition.providers.filter(pk=provider.pk).exists():
        errors.setdefault("provider", []).append(f"{provider} is not allowed by the definition '{definition}'.")
    services = list(required_services)
    errors.update(_required_services_errors(services))
    if errors:
        raise ValidationFailed("The catalog is not valid.", fields=errors)
    with transaction.atomic():
        catalog.save()
        catalog.classifications.set(list(classifications))
        catalog.required_services.set(services)
        audit_record(target=catalog, action="created", changes=audit_changes({}, _catalog_snapshot(catalog)),
                     performed_by=performed_by, channel=channel)
    return catalog


def _required_services_errors(services: list[Product]) -> dict[str, list[str]]:
    wrong = [str(p) for p in services if p.product_type.service_type != ProductType.ServiceType.TERMED]
    return {"required_services": [f"Only termed services can be required: {', '.join(wrong)}."]} if wrong else {}


def _catalog_snapshot(catalog: UsageServiceCatalog) -> dict[str, Any]:
    return {
        **{name: getattr(catalog, name) for name in CATALOG_FIELDS},
        "classifications": ", ".join(sorted(c.code for c in catalog.classifications.all())),
        "required_services": ", ".join(sorted(p.code for p in catalog.required_services.all())),
    }


def usage_catalog_update(
    *, catalog: UsageServiceCatalog, data: dict[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER,
) -> UsageServiceCatalog:
    """Change a catalog's name, provider, validity, priority or conditions."""
    allowed = set(CATALOG_FIELDS) | {"classifications", "required_services"}
    unknown = set(data) - allowed
    if unknown:
        raise ValidationFailed("These fields cannot be changed.", fields={name: ["Not editable."] for name in sorted(unknown)})
    with transaction.atomic():
        locked = _catalog_lock(catalog)
        _ensure_editable(locked)
        before = _catalog_snapshot(locked)
        for name in CATALOG_FIELDS:
            if name in data:
                setattr(locked, name, data[name])
        errors: dict[str, list[str]] = {}
        model_errors(locked, errors, validate_unique=True, validate_constraints=True)
        if "provider" in data and data["provider"] is not None and not locked.definition.providers.filter(pk=data["provider"].pk).exists():
            errors.setdefault("provider", []).append(f"{data['provider']} is not allowed by the definition '{locked.definition}'.")
        if "required_services" in data:
            errors.update(_required_services_errors(list(data["required_services"])))
        if errors:
            raise ValidationFailed("The catalog is not valid.", fields=errors)
        locked.save()
        if "classifications" in data:
            locked.classifications.set(list(data["classifications"]))
        if "required_services" in data:
            locked.required_services.set(list(data["required_services"]))
        changes = audit_changes(before, _catalog_snapshot(locked))
        if changes:
            audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return locked


def _defaults_for(catalog: UsageServiceCatalog, product: Product) -> tuple[Decimal | None, list[Tier]]:
    default = catalog.definition.default_rates.filter(product_type=product.product_type_id).first()
    if default is None:
        return None, []
    return default.base_rate, _tiers_of(default)


def _usage_service_errors(catalog: UsageServiceCatalog, product: Product, provisioning_id: str,
                          exclude_pk: int | None = None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if product.product_type.service_type != ProductType.ServiceType.USAGE:
        errors.setdefault("product", []).append(f"{product} is not a usage service.")
    elif not catalog.definition.usage_service_types.filter(pk=product.product_type_id).exists():
        errors.setdefault("product", []).append(f"{product.product_type} services are not allowed by the definition '{catalog.definition}'.")
    siblings = catalog.services.exclude(pk=exclude_pk)
    if siblings.filter(product=product).exists():
        errors.setdefault("product", []).append(f"{product} is already in this catalog.")
    if provisioning_id and siblings.filter(provisioning_id=provisioning_id).exists():
        errors.setdefault("provisioning_id", []).append(f"Another service in this catalog has provisioning ID {provisioning_id}.")
    return errors


def usage_service_add(
    *, catalog: UsageServiceCatalog, product: Product, provisioning_id: str = "", base_rate=None,
    tiers: Iterable[Tier] | None = None, performed_by=None, channel: str = Channel.CALL_CENTER,
) -> UsageService:
    """Add a usage service. Base rate and tiers default to the definition's for the
    product's type; pass them to override (``tiers=[]`` for no tiers)."""
    with transaction.atomic():
        locked = _catalog_lock(catalog)
        _ensure_editable(locked)
        default_rate, default_tiers = _defaults_for(locked, product)
        provisioning_id = (provisioning_id or "").strip()
        errors = _usage_service_errors(locked, product, provisioning_id)
        chosen = default_rate if base_rate in (None, "") else base_rate
        rate = None
        if chosen is None:
            errors.setdefault("base_rate", []).append("Give a base rate (the definition has no default for this type).")
        else:
            rate = _rate(chosen, "base_rate", errors)
        try:
            cleaned = tiers_clean(default_tiers if tiers is None else tiers)
        except ValidationFailed as error:
            errors.update(error.fields)
            cleaned = []
        if errors:
            raise ValidationFailed(f"{product} cannot be added.", fields=errors)
        service = UsageService.objects.create(catalog=locked, product=product, provisioning_id=provisioning_id, base_rate=rate)
        UsageTier.objects.bulk_create(UsageTier(usage_service=service, **tier) for tier in cleaned)
        audit_record(target=locked, action=f"added {product}", performed_by=performed_by, channel=channel,
                     changes={f"{product.code}.base_rate": [None, str(rate)], f"{product.code}.provisioning_id": [None, provisioning_id],
                              f"{product.code}.tiers": [None, tiers_text(cleaned)]})
    return service


def usage_service_update(
    *, usage_service: UsageService, provisioning_id: str | None = None, base_rate=None,
    tiers: Iterable[Tier] | None = None, performed_by=None, channel: str = Channel.CALL_CENTER,
) -> UsageService:
    """Change a service's provisioning ID, base rate or tiers (None: leave as is)."""
    with transaction.atomic():
        catalog = _catalog_lock(usage_service.catalog)
        _ensure_editable(catalog)
        service = UsageService.objects.select_for_update().get(pk=usage_service.pk)
        before = {"provisioning_id": service.provisioning_id, "base_rate": service.base_rate, "tiers": tiers_text(_tiers_of(service))}
        new_id = service.provisioning_id if provisioning_id is None else provisioning_id.strip()
        errors = _usage_service_errors(catalog, service.product, new_id, exclude_pk=service.pk)
        rate = service.base_rate if base_rate in (None, "") else _rate(base_rate, "base_rate", errors)
        cleaned = None
        if tiers is not None:
            try:
                cleaned = tiers_clean(tiers)
            except ValidationFailed as error:
                errors.update(error.fields)
        if errors:
            raise ValidationFailed(f"{service.product} cannot be changed.", fields=errors)
        service.provisioning_id, service.base_rate = new_id, rate
        service.save()
        if cleaned is not None:
            service.tiers.all().delete()
            UsageTier.objects.bulk_create(UsageTier(usage_service=service, **tier) for tier in cleaned)
        after = {"provisioning_id": service.provisioning_id, "base_rate": service.base_rate, "tiers": tiers_text(_tiers_of(service))}
        changes = {f"{service.product.code}.{name}": values for name, values in audit_changes(before, after).items()}
        if changes:
            audit_record(target=catalog, action=f"changed {service.product}", changes=changes, performed_by=performed_by, channel=channel)
    return service


def usage_service_remove(*, usage_service: UsageService, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    with transaction.atomic():
        catalog = _catalog_lock(usage_service.catalog)
        _ensure_editable(catalog)
        product = usage_service.product
        usage_service.delete()
        audit_record(target=catalog, action=f"removed {product}", changes={f"{product.code}": [str(usage_service.base_rate), None]},
                     performed_by=performed_by, channel=channel)


class CatalogSetEffective(SetEffective):
    def validate(self, catalog, **params):
        definition = catalog.definition
        if definition.state != EFFECTIVE:
            yield f"Its definition '{definition}' is not effective."
        if catalog.provider.state != EFFECTIVE:
            yield f"Its provisioning provider '{catalog.provider}' is not effective."
        elif not definition.providers.filter(pk=catalog.provider_id).exists():
            yield f"Its provisioning provider '{catalog.provider}' is not allowed by the definition."
        if catalog.valid_until is not None and catalog.valid_until <= timezone.now():
            yield f"Its validity ended on {catalog.valid_until:%Y-%m-%d %H:%M}."
        services = list(catalog.services.select_related("product__product_type").prefetch_related("tiers"))
        if not services:
            yield "It has no usage services."
        seen: dict[str, str] = {}
        for service in services:
            product = service.product
            if not product.is_active:
                yield f"{product} is not an active product."
            if product.product_type.used_for_provisioning and not service.provisioning_id:
                yield f"{product} needs a provisioning ID (its type '{product.product_type}' is used for provisioning)."
            if service.provisioning_id:
                if service.provisioning_id in seen:
                    yield f"{product} and {seen[service.provisioning_id]} share provisioning ID {service.provisioning_id}."
                seen[service.provisioning_id] = str(product)
            try:
                tiers_clean(_tiers_of(service))
            except ValidationFailed as error:
                for message in error.fields.get("tiers", []):
                    yield f"{product}: {message}"

    def process(self, catalog, **params):
        catalog = super().process(catalog)
        previous = catalog.previous_version
        if previous is not None and previous.state == EFFECTIVE:
            # The new version replaces the old one from now on.
            previous.state = NOT_EFFECTIVE
            previous.save(update_fields=["state"])
            audit_record(target=previous, action=f"replaced by version {catalog.version}",
                         changes={"state": [EFFECTIVE, NOT_EFFECTIVE]}, channel=Channel.SYSTEM)
        return catalog


CATALOG_ACTIONS = actions_by_code(CatalogSetEffective, SetNotEffective, Cancel)


def usage_catalog_act(*, catalog: UsageServiceCatalog, action: str, performed_by=None,
                      channel: str = Channel.CALL_CENTER) -> UsageServiceCatalog:
    """Run a life cycle action (set_effective, set_not_effective, cancel) on a catalog."""
    return CATALOG_ACTIONS[action].execute(catalog, performed_by=performed_by, channel=channel)


def usage_catalog_revise(*, catalog: UsageServiceCatalog, performed_by=None, channel: str = Channel.CALL_CENTER) -> UsageServiceCatalog:
    """Copy a catalog into a new DRAFT version (conditions, services, tiers)."""
    with transaction.atomic():
        locked = _catalog_lock(catalog)
        if locked.state not in (EFFECTIVE, NOT_EFFECTIVE):
            raise ApplicationError(f"Only an effective or not effective catalog gets a new version; this one is {locked.state}.",
                                   code="catalog_not_revisable")
        if hasattr(locked, "next_version"):
            raise ApplicationError(f"Version {locked.next_version.version} already exists; edit that one.", code="version_exists")
        copy = UsageServiceCatalog.objects.create(
            name=locked.name, definition=locked.definition, provider=locked.provider, currency=locked.currency,
            valid_from=locked.valid_from, valid_until=locked.valid_until, priority=locked.priority,
            version=locked.version + 1, previous_version=locked,
        )
        copy.classifications.set(locked.classifications.all())
        copy.required_services.set(locked.required_services.all())
        for service in locked.services.prefetch_related("tiers"):
            new = UsageService.objects.create(catalog=copy, product=service.product, provisioning_id=service.provisioning_id,
                                              base_rate=service.base_rate)
            UsageTier.objects.bulk_create(UsageTier(usage_service=new, **tier) for tier in _tiers_of(service))
        audit_record(target=copy, action=f"created as version {copy.version} of {locked}", performed_by=performed_by, channel=channel)
        audit_record(target=locked, action=f"new version {copy.version} drafted", performed_by=performed_by, channel=channel)
    return copy
