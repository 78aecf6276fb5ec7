"""Customers: contacts, accounts receivable, portal users and device credentials."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from core.choices import Channel
from core.states import StateMachine

from .validators import phone_normalize, validate_country, validate_currency


class Classification(models.Model):
    """Operator-defined customer class (e.g. Normal, VIP); drives which catalogs and prices apply."""

    code = models.SlugField(max_length=32, unique=True, help_text="Stable code used in catalog conditions, e.g. VIP.")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False, help_text="Given to new accounts when none is chosen.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_classification")
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """A person or a company the operator deals with."""

    class Kind(models.TextChoices):
        PERSON = "PERSON", "Person"
        COMPANY = "COMPANY", "Company"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PERSON)
    title = models.CharField(max_length=20, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=16, blank=True, help_text="E.164, e.g. +35722123456.")
    mobile_phone = models.CharField(max_length=16, blank=True, help_text="E.164, e.g. +35799123456.")
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "company_name"]
        # Search indexes (case-insensitive prefix on names and e-mail, phone prefix) are
        # created for PostgreSQL in migration 0002; see accounts.selectors.customer_search.

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.kind == self.Kind.COMPANY:
            return self.company_name
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.kind == self.Kind.PERSON:
            if not self.first_name.strip():
                errors.setdefault("first_name", []).append("A person needs a first name.")
            if not self.last_name.strip():
                errors.setdefault("last_name", []).append("A person needs a last name.")
        elif not self.company_name.strip():
            errors.setdefault("company_name", []).append("A company needs a name.")
        self.first_name, self.last_name = self.first_name.strip(), self.last_name.strip()
        self.company_name = self.company_name.strip()
        self.email = (self.email or "").strip().lower()
        for field_name in ("phone", "mobile_phone"):
            try:
                setattr(self, field_name, phone_normalize(getattr(self, field_name)))
            except ValidationError as error:
                errors.setdefault(field_name, []).extend(error.messages)
        if not (self.email or self.phone or self.mobile_phone):
            errors.setdefault("email", []).append("Give at least one way to reach the customer: e-mail or phone.")
        if errors:
            raise ValidationError(errors)


class CountryField(models.CharField):
    """An ISO 3166 alpha-2 code, normalised to upper case before it is validated."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 2)
        kwargs.setdefault("validators", [validate_country])
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return value.strip().upper() if isinstance(value, str) else value


class Address(models.Model):
    class Kind(models.TextChoices):
        BILLING = "BILLING", "Billing"
        INSTALLATION = "INSTALLATION", "Installation"
        SHIPPING = "SHIPPING", "Shipping"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="addresses")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BILLING)
    line1 = models.CharField("address line 1", max_length=200)
    line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=100, blank=True)
    country = CountryField(help_text="ISO 3166 code, e.g. CY.")

    class Meta:
        verbose_name_plural = "addresses"
        constraints = [models.UniqueConstraint(fields=["contact", "kind"], name="one_address_per_kind")]

    def __str__(self) -> str:
        return ", ".join(part for part in (self.line1, self.line2, self.postal_code, self.city, self.country) if part)


class AccountsReceivable(models.Model):
    """The customer's financial account. Its balance is derived from the ledger, never stored."""

    class State(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        SUSPENDED = "SUSPENDED", "Suspended"
        TERMINATED = "TERMINATED", "Terminated"

    LIFECYCLE = StateMachine.build(
        "account",
        [
            ("suspend", [State.ACTIVE], State.SUSPENDED),
            ("reactivate", [State.SUSPENDED], State.ACTIVE),
            ("terminate", [State.ACTIVE, State.SUSPENDED], State.TERMINATED),
        ],
    )

    number = models.CharField(max_length=20, unique=True, editable=False)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="accounts")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    classification = models.ForeignKey(Classification, on_delete=models.PROTECT, related_name="accounts")
    credit_limit = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0"))]
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.ACTIVE, editable=False)
    state_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "customer account"
        verbose_name_plural = "customer accounts"
        ordering = ["-created_at"]
        permissions = [
            ("suspend_accountsreceivable", "Can suspend and reactivate customer accounts"),
            ("terminate_accountsreceivable", "Can terminate (cancel) customer accounts"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(credit_limit__gte=0), name="ar_credit_limit_not_negative"),
            models.CheckConstraint(
                condition=models.Q(state__in=["ACTIVE", "SUSPENDED", "TERMINATED"]), name="ar_state_valid"
            ),
        ]
        indexes = [models.Index(fields=["state", "classification"], name="ar_state_class_idx")]

    def __str__(self) -> str:
        return f"{self.number} {self.contact.display_name}"


class AccountEvent(models.Model):
    """Audit row written in the same transaction as every change to an account or its contact."""

    class Kind(models.TextChoices):
        SIGNED_UP = "SIGNED_UP", "Signed up"
        UPDATED = "UPDATED", "Account updated"
        CONTACT_UPDATED = "CONTACT_UPDATED", "Contact updated"
        SUSPENDED = "SUSPENDED", "Suspended"
        REACTIVATED = "REACTIVATED", "Reactivated"
        TERMINATED = "TERMINATED", "Terminated"
        PORTAL_ACCESS_GRANTED = "PORTAL_ACCESS_GRANTED", "Portal access granted"
        DEVICE_CREDENTIAL_ISSUED = "DEVICE_CREDENTIAL_ISSUED", "Device credential issued"
        DEVICE_CREDENTIAL_REVOKED = "DEVICE_CREDENTIAL_REVOKED", "Device credential revoked"

    account = models.ForeignKey(AccountsReceivable, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Field: [old, new] for updates.")
    reason = models.CharField(max_length=500, blank=True)
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"], name="account_event_recent_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class PortalUser(models.Model):
    """The customer's login to the portal, linked to exactly one contact."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_user")
    contact = models.OneToOneField(Contact, on_delete=models.PROTECT, related_name="portal_user")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.get_username()


class DeviceCredential(models.Model):
    """A secret a decoder or app presents as ``Authorization: Device <key>``.

    Only a SHA-256 of the key is stored (the key is random and long, so a slow hash buys
    nothing and would slow every entitlement check); the first characters are kept in clear
    to find the row and to show staff which key is which.
    """

    account = models.ForeignKey(AccountsReceivable, on_delete=models.CASCADE, related_name="device_credentials")
    label = models.CharField(max_length=100, help_text="What the device is, e.g. 'Living-room decoder'.")
    key_prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    PREFIX_LENGTH = 8

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
