"""What the operator sells: products, content titles, price plans, usage service catalogs,
promotions and bundles.

Money: unit prices and rates keep 4 decimals (``RATE``); currency is a 3-letter code on
the plan or catalog. Every write goes through ``catalogs.services``; state changes are
``core.actions.Action`` subclasses with restrictions and validations.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from accounts.models import Classification
from core.choices import LifecycleState, Screen

RATE = {"max_digits": 12, "decimal_places": 4, "validators": [MinValueValidator(Decimal("0"))]}


# --- Products ---------------------------------------------------------------------------

class ProductType(models.Model):
    class Classification(models.TextChoices):
        SERVICE = "SERVICE", "Service"
        PHYSICAL_GOOD = "PHYSICAL_GOOD", "Physical good"
        EXPENSE = "EXPENSE", "Expense"

    class ServiceType(models.TextChoices):
        TERMED = "TERMED", "Termed"
        USAGE = "USAGE", "Usage"
        ONE_TIME = "ONE_TIME", "One-time"

    class Composition(models.TextChoices):
        FLAT = "FLAT", "Flat"
        BUNDLE = "BUNDLE", "Bundle"

    name = models.CharField(max_length=100, unique=True)
    classification = models.CharField(max_length=16, choices=Classification.choices)
    service_type = models.CharField(max_length=16, choices=ServiceType.choices, blank=True,
                                    help_text="Required for services, empty otherwise.")
    composition = models.CharField(max_length=8, choices=Composition.choices, default=Composition.FLAT)
    used_for_provisioning = models.BooleanField(default=False,
                                                help_text="Products of this type are provisioned: they need a provisioning ID.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(classification="SERVICE") & ~Q(service_type="")) | (~Q(classification="SERVICE") & Q(service_type="")),
                name="product_type_service_type_iff_service",
                violation_error_message="A service type is required for services and only for services.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    code = models.SlugField(max_length=50, unique=True, help_text="Stable code, e.g. PPV-LOTR.")
    name = models.CharField(max_length=200)
    product_type = models.ForeignKey(ProductType, on_delete=models.PROTECT, related_name="products")
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    titles = models.ManyToManyField("ContentTitle", blank=True, related_name="products",
                                    help_text="The content behind it: one title for a PPV movie, many for a package.")
    max_devices = models.PositiveSmallIntegerField(null=True, blank=True,
                                                   help_text="Termed services: devices an account holding it may register (empty: the default).")
    max_streams = models.PositiveSmallIntegerField(null=True, blank=True,
                                                   help_text="Termed services: streams at once (empty: the default).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_usage_service(self) -> bool:
        return self.product_type.service_type == ProductType.ServiceType.USAGE

    @property
    def is_termed_service(self) -> bool:
        return self.product_type.service_type == ProductType.ServiceType.TERMED


class BundleComponent(models.Model):
    """A service inside a bundle, with the standalone selling price used to allocate the
    bundle's price across its components (for revenue recognition)."""

    bundle = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="bundle_components")
    component = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="in_bundles")
    standalone_price = models.DecimalField(**RATE, help_text="What the component sells for on its own, per period.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bundle", "component"], name="bundle_component_once")]

    def __str__(self) -> str:
        return f"{self.bundle} ⊃ {self.component}"


# --- Content ----------------------------------------------------------------------------

class Genre(models.Model):
    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContentTitle(models.Model):
    """A film or programme: metadata, artwork, workflow state and where it may be watched."""

    class State(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        READY = "READY", "Ready for review"
        PUBLISHED = "PUBLISHED", "Published"
        RETIRED = "RETIRED", "Retired"

    class AgeRating(models.TextChoices):
        ALL = "U", "U (all ages)"
        PG = "PG", "PG"
        TWELVE = "12", "12"
        FIFTEEN = "15", "15"
        EIGHTEEN = "18", "18"

    code = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    synopsis = models.TextField(blank=True)
    genres = models.ManyToManyField(Genre, blank=True, related_name="titles")
    cast = models.JSONField(default=list, blank=True, help_text="Names, leading roles first.")
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    age_rating = models.CharField(max_length=4, choices=AgeRating.choices, blank=True)
    release_date = models.DateField(null=True, blank=True)
    is_older_movie = models.BooleanField(default=False, help_text="Catalog (back-catalogue) title, usually priced lower.")
    artwork_url = models.URLField(max_length=500, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT, editable=False)
    available_from = models.DateTimeField(null=True, blank=True, help_text="Empty: from publication.")
    available_until = models.DateTimeField(null=True, blank=True, help_text="Empty: no end.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        indexes = [models.Index(fields=["state", "title"], name="title_state_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(available_from__isnull=True) | Q(available_until__isnull=True) | Q(available_until__gt=models.F("available_from")),
                name="title_window_ordered",
                violation_error_message="The availability window must end after it starts.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


class TitleAvailability(models.Model):
    """A title may be watched on this kind of screen, optionally only within a window."""

    title = models.ForeignKey(ContentTitle, on_delete=models.CASCADE, related_name="availabilities")
    screen = models.CharField(max_length=16, choices=Screen.choices)
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "title availabilities"
        constraints = [
            models.UniqueConstraint(fields=["title", "screen"], name="title_screen_once"),
            models.CheckConstraint(
                condition=Q(available_from__isnull=True) | Q(available_until__isnull=True) | Q(available_until__gt=models.F("available_from")),
                name="title_screen_window_ordered",
                violation_error_message="The availability window must end after it starts.",
            ),
        ]
        indexes = [models.Index(fields=["screen", "title"], name="availability_screen_idx")]

    def __str__(self) -> str:
        return f"{self.title} on {self.get_screen_display()}"


# --- Price plans ------------------------------------------------------------------------

class PricePlan(models.Model):
    """Rates for termed services (recurring), one-time services and physical goods."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="EUR")
    state = models.CharField(max_length=16, choices=LifecycleState.choices, default=LifecycleState.DRAFT, editable=False)
    valid_from = models.DateTimeField(null=True, blank=True, help_text="Empty: always valid.")
    valid_until = models.DateTimeField(null=True, blank=True)
    classifications = models.ManyToManyField(Classification, blank=True, related_name="price_plans",
                                             help_text="Condition: only accounts of these classifications (empty: all).")
    prices_include_tax = models.BooleanField(default=True, help_text="Tax-inclusive price list (consumer prices).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PricePlanRate(models.Model):
    class ChargeType(models.TextChoices):
        RECURRING = "RECURRING", "Recurring"
        ONE_TIME = "ONE_TIME", "One-time"

    class Period(models.TextChoices):
        MONTH = "MONTH", "Month"
        QUARTER = "QUARTER", "Quarter"
        YEAR = "YEAR", "Year"

    price_plan = models.ForeignKey(PricePlan, on_delete=models.CASCADE, related_name="rates")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="price_plan_rates")
    charge_type = models.CharField(max_length=16, choices=ChargeType.choices)
    amount = models.DecimalField(**RATE)
    billing_period = models.CharField(max_length=8, choices=Period.choices, blank=True, help_text="Recurring rates only.")
    free_trial_days = models.PositiveSmallIntegerField(default=0, help_text="Freemium: days free before the first charge.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["price_plan", "product", "charge_type"], name="one_rate_per_product_charge"),
            models.CheckConstraint(
                condition=(Q(charge_type="RECURRING") & ~Q(billing_period="")) | (Q(charge_type="ONE_TIME") & Q(billing_period="")),
                name="rate_period_iff_recurring",
                violation_error_message="Recurring rates need a billing period; one-time rates have none.",
            ),
        ]

    def __str__(self) -> str:
        period = f"/{self.billing_period.lower()}" if self.billing_period else ""
        return f"{self.product}: {self.amount}{period}"

    @property
    def is_free(self) -> bool:
        return self.amount == 0


# --- Usage service catalogs -------------------------------------------------------------

class UsageServiceCatalogDefinition(models.Model):
    """Allowed usage service types and providers, and the default rates new catalog
    entries start from. Only one may be EFFECTIVE."""

    name = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=16, choices=LifecycleState.choices, default=LifecycleState.DRAFT, editable=False)
    usage_service_types = models.ManyToManyField(ProductType, related_name="+", blank=True)
    providers = models.ManyToManyField("provisioning.ProvisioningProvider", related_name="+", blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=Q(state="EFFECTIVE"), name="one_effective_definition",
                                    violation_error_message="Only one usage service catalog definition may be effective.")
        ]

    def __str__(self) -> str:
        return self.name


class DefinitionDefaultRate(models.Model):
    definition = models.ForeignKey(UsageServiceCatalogDefinition, on_delete=models.CASCADE, related_name="default_rates")
    product_type = models.ForeignKey(ProductType, on_delete=models.PROTECT, related_name="+")
    base_rate = models.DecimalField(**RATE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["definition", "product_type"], name="one_default_rate_per_type")]

    def __str__(self) -> str:
        return f"{self.product_type}: {self.base_rate}"


class TimeWindow(models.Model):
    """A wall-clock window in the operator's time zone, inclusive by minute:
    00:01–06:59 covers 00:01:00 through 06:59:59. A window whose end is before its start
    crosses midnight (22:00–05:59)."""

    rate = models.DecimalField(**RATE)
    start_time = models.TimeField(help_text="HH:MM, inclusive.")
    end_time = models.TimeField(help_text="HH:MM, inclusive to the end of that minute.")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.rate} {self.start_time:%H:%M}–{self.end_time:%H:%M}"


class DefinitionDefaultTier(TimeWindow):
    default_rate = models.ForeignKey(DefinitionDefaultRate, on_delete=models.CASCADE, related_name="tiers")


class UsageServiceCatalog(models.Model):
    """Usage services (PPV movies) with their rates, for the accounts that meet its conditions."""

    name = models.CharField(max_length=200)
    definition = models.ForeignKey(UsageServiceCatalogDefinition, on_delete=models.PROTECT, related_name="catalogs")
    provider = models.ForeignKey("provisioning.ProvisioningProvider", on_delete=models.PROTECT, related_name="usage_catalogs")
    currency = models.CharField(max_length=3, default="EUR")
    state = models.CharField(max_length=16, choices=LifecycleState.choices, default=LifecycleState.DRAFT, editable=False)
    valid_from = models.DateTimeField(null=True, blank=True, help_text="Empty: always valid.")
    valid_until = models.DateTimeField(null=True, blank=True)
    classifications = models.ManyToManyField(Classification, blank=True, related_name="usage_catalogs",
                                             help_text="Accounts receivable condition: these classifications only (empty: any).")
    required_services = models.ManyToManyField(Product, blank=True, related_name="required_by_usage_catalogs",
                                               help_text="Subscription condition: an EFFECTIVE termed service among these.")
    priority = models.PositiveSmallIntegerField(default=100, help_text="Among catalogs an account qualifies for equally, lower wins.")
    version = models.PositiveIntegerField(default=1, editable=False)
    previous_version = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="next_version", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        indexes = [models.Index(fields=["state"], name="usage_catalog_state_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="usage_catalog_validity_ordered",
                violation_error_message="The validity must end after it starts.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}" if self.version > 1 else self.name


class UsageService(models.Model):
    """A usage service product in a catalog, with its base rate and provisioning ID."""

    catalog = models.ForeignKey(UsageServiceCatalog, on_delete=models.CASCADE, related_name="services")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="usage_catalog_entries")
    provisioning_id = models.CharField(max_length=64, blank=True, help_text="The platform's product id, e.g. 1AQ8.")
    base_rate = models.DecimalField(**RATE)

    class Meta:
        ordering = ["product__name"]
        constraints = [
            models.UniqueConstraint(fields=["catalog", "product"], name="usage_service_once_per_catalog",
                                    violation_error_message="This product is already in the catalog."),
            models.UniqueConstraint(fields=["catalog", "provisioning_id"], condition=~Q(provisioning_id=""),
                                    name="provisioning_id_once_per_catalog",
                                    violation_error_message="Another service in this catalog has this provisioning ID."),
        ]

    def __str__(self) -> str:
        return f"{self.product} in {self.catalog}"


class UsageTier(TimeWindow):
    usage_service = models.ForeignKey(UsageService, on_delete=models.CASCADE, related_name="tiers")


# --- Promotions -------------------------------------------------------------------------

class Promotion(models.Model):
    """Promotional pricing on recurring charges: percent or amount off, for N periods."""

    class Kind(models.TextChoices):
        PERCENT = "PERCENT", "Percent off"
        AMOUNT = "AMOUNT", "Amount off"

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.DecimalField(max_digits=12, decimal_places=4, validators=[MinValueValidator(Decimal("0"))],
                                help_text="Percent (0–100) or amount per period in the plan's currency.")
    periods = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Billing periods it lasts; empty: for ever.")
    valid_from = models.DateTimeField(null=True, blank=True, help_text="When it may be granted.")
    valid_until = models.DateTimeField(null=True, blank=True)
    products = models.ManyToManyField(Product, blank=True, related_name="promotions", help_text="Empty: every recurring charge.")
    requires_coupon = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=LifecycleState.choices, default=LifecycleState.DRAFT, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(kind="PERCENT") | Q(value__lte=100), name="percent_at_most_100",
                                   violation_error_message="A percentage cannot exceed 100."),
        ]

    def __str__(self) -> str:
        return self.name


class Coupon(models.Model):
    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="coupons")
    code = models.CharField(max_length=40, unique=True, help_text="What the customer types; matched case-insensitively.")
    max_redemptions = models.PositiveIntegerField(null=True, blank=True, help_text="Across all accounts; empty: unlimited.")
    max_per_account = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.code


class CouponRedemption(models.Model):
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="coupon_redemptions")
    redeemed_at = models.DateTimeField(auto_now_add=True)
    reference = models.CharField(max_length=64, unique=True, help_text="Idempotency: the transaction that redeemed it.")

    class Meta:
        indexes = [models.Index(fields=["coupon", "account"], name="redemption_coupon_account_idx")]

    def __str__(self) -> str:
        return f"{self.coupon} by {self.account_id}"
