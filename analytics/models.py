"""Rollup tables: the figures the dashboard and the staff API read, computed by scheduled
jobs (analytics/services/rollups.py) so that a page never scans UDRs or viewing events.

Every row is keyed by its period and subject (unique constraints), and a month is rebuilt
by replacing its rows in one transaction: re-running a month changes nothing.
Definitions: docs/analytics.md.
"""

from decimal import Decimal

from django.db import models

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


class Segment(models.Model):
    """The segment columns shared by the rollups (copied, so a later reclassification or
    change of address does not rewrite history)."""

    classification = models.CharField(max_length=50, blank=True)
    country = models.CharField(max_length=2, blank=True)
    channel = models.CharField(max_length=16, blank=True, help_text="Where the subscription was activated (or the order placed).")
    currency = models.CharField(max_length=3)

    class Meta:
        abstract = True


class MrrSnapshot(Segment):
    """The monthly-normalised recurring revenue of one termed service at a month's end."""

    month = models.DateField(help_text="First day of the month; the snapshot is taken at its last day.")
    service = models.ForeignKey("subscriptions.SubscriptionService", on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("catalogs.Product", on_delete=models.PROTECT, related_name="+")
    price_plan = models.ForeignKey("catalogs.PricePlan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    mrr = models.DecimalField(**MONEY, help_text="Net of tax and of the promotion in force; 0 during a free trial.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "service"], name="analytics_mrr_once_per_service_month")]
        indexes = [models.Index(fields=["month", "account"], name="analytics_mrr_month_account")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} service {self.service_id}: {self.mrr}"


class AccountMonth(Segment):
    """One customer's month: MRR at its end, the movement that led there, and the revenue
    recognized in it. Lifetime revenue, ARPU, churn and cohorts are sums over these rows."""

    class Movement(models.TextChoices):
        NEW = "NEW", "New"
        EXPANSION = "EXPANSION", "Expansion"
        CONTRACTION = "CONTRACTION", "Contraction"
        CHURN = "CHURN", "Churned"
        REACTIVATION = "REACTIVATION", "Reactivation"
        NONE = "NONE", "No change"

    month = models.DateField(help_text="First day of the month.")
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.CASCADE, related_name="+")
    cohort = models.DateField(help_text="First day of the month the customer signed up (account created).")
    mrr = models.DecimalField(**MONEY, default=ZERO)
    previous_mrr = models.DecimalField(**MONEY, default=ZERO)
    movement = models.CharField(max_length=12, choices=Movement.choices, default=Movement.NONE)
    movement_amount = models.DecimalField(**MONEY, default=ZERO, help_text="mrr − previous_mrr.")
    recurring_revenue = models.DecimalField(**MONEY, default=ZERO, help_text="Recognized from deferred revenue, net of credits.")
    ppv_revenue = models.DecimalField(**MONEY, default=ZERO)
    one_time_revenue = models.DecimalField(**MONEY, default=ZERO)
    ppv_orders = models.PositiveIntegerField(default=0)
    night_orders = models.PositiveIntegerField(default=0, help_text="Of those, placed between 00:00 and 06:59 (local time).")
    views = models.PositiveIntegerField(default=0, help_text="Views started in the month (from the viewing rollup).")
    seconds_watched = models.PositiveBigIntegerField(default=0)
    recent_seconds = models.PositiveBigIntegerField(default=0, help_text="Watched in the 30 days to the month's end.")
    before_seconds = models.PositiveBigIntegerField(default=0, help_text="Watched in the 30 days before those.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "account"], name="analytics_account_once_per_month")]
        indexes = [
            models.Index(fields=["month", "movement"], name="analytics_account_month_move"),
            # Cohort retention (who ever paid, per sign-up month) from the index alone (PostgreSQL).
            models.Index(fields=["cohort", "account", "month"], include=["classification", "country", "channel", "currency"],
                         condition=models.Q(mrr__gt=0), name="analytics_account_cohort_paid"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} account {self.account_id}: MRR {self.mrr}"

    @property
    def total_revenue(self):
        return self.recurring_revenue + self.ppv_revenue + self.one_time_revenue


class SegmentMonth(Segment):
    """One month of one segment (classification × country × channel × currency): the sums
    and counts of its customer months, written by the monthly rollup beside them (in the
    same transaction, from the same rows). The dashboard's month-by-month figures, churn
    rate and filter choices read these few rows (tens a month) instead of every customer
    month (55,000 a month at 55,000 customers)."""

    month = models.DateField(help_text="First day of the month.")
    mrr = models.DecimalField(**MONEY, default=ZERO)
    new = models.DecimalField(**MONEY, default=ZERO, help_text="MRR of NEW movements.")
    expansion = models.DecimalField(**MONEY, default=ZERO)
    contraction = models.DecimalField(**MONEY, default=ZERO, help_text="Negative, as the movements' amounts.")
    churned = models.DecimalField(**MONEY, default=ZERO, help_text="Negative, as the movements' amounts.")
    reactivation = models.DecimalField(**MONEY, default=ZERO)
    customers = models.PositiveIntegerField(default=0, help_text="Paying at the month's end (MRR > 0).")
    customers_at_start = models.PositiveIntegerField(default=0, help_text="Paying at the month's start.")
    new_customers = models.PositiveIntegerField(default=0)
    churned_customers = models.PositiveIntegerField(default=0)
    recurring_revenue = models.DecimalField(**MONEY, default=ZERO)
    ppv_revenue = models.DecimalField(**MONEY, default=ZERO)
    one_time_revenue = models.DecimalField(**MONEY, default=ZERO)
    ppv_orders = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "classification", "country", "channel", "currency"],
                                               name="analytics_segment_once_per_month")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.classification}/{self.country}/{self.channel}/{self.currency}: MRR {self.mrr}"

    @classmethod
    def sums(cls) -> dict[str, bool]:
        """The summed columns (every one but the key), each with whether it is money."""
        key = {"id", "month", *(field.name for field in Segment._meta.fields)}
        return {field.name: isinstance(field, models.DecimalField) for field in cls._meta.concrete_fields if field.name not in key}


class ViewingDay(models.Model):
    """Views, viewers, seconds watched and completions of one title on one screen and day."""

    day = models.DateField()
    title = models.ForeignKey("catalogs.ContentTitle", on_delete=models.CASCADE, related_name="+")
    screen = models.CharField(max_length=16)
    views = models.PositiveIntegerField(default=0, help_text="START events.")
    viewers = models.PositiveIntegerField(default=0, help_text="Distinct accounts.")
    seconds_watched = models.PositiveBigIntegerField(default=0)
    completions = models.PositiveIntegerField(default=0, help_text="Views that reached 90% of the title's duration.")
    peak_concurrent = models.PositiveIntegerField(default=0, help_text="Most views playing at the same moment.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "title", "screen"], name="analytics_viewing_once_per_day")]

    def __str__(self) -> str:
        return f"{self.day} title {self.title_id} on {self.screen}: {self.views} views"


class AccountViewingDay(models.Model):
    """One customer's viewing of one title on one screen, day and part of the day (of the
    view's start): what subscriber insights (usage, preferences, falling viewing) and,
    later, recommendations read instead of the raw events."""

    class Daypart(models.TextChoices):
        NIGHT = "NIGHT", "Night (00–07)"
        MORNING = "MORNING", "Morning (07–12)"
        AFTERNOON = "AFTERNOON", "Afternoon (12–18)"
        EVENING = "EVENING", "Evening (18–24)"

    day = models.DateField()
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.CASCADE, related_name="+")
    title = models.ForeignKey("catalogs.ContentTitle", on_delete=models.CASCADE, related_name="+")
    screen = models.CharField(max_length=16)
    daypart = models.CharField(max_length=10, choices=Daypart.choices)
    views = models.PositiveIntegerField(default=0)
    seconds_watched = models.PositiveBigIntegerField(default=0)
    completions = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "account", "title", "screen", "daypart"],
                                               name="analytics_account_viewing_once")]
        indexes = [models.Index(fields=["account", "day"], name="analytics_viewing_account_day")]

    def __str__(self) -> str:
        return f"{self.day} account {self.account_id} title {self.title_id}: {self.seconds_watched}s"


class TitleSimilarity(models.Model):
    """How alike two titles are by who watched or bought them (cosine over customers),
    rebuilt by a scheduled job (analytics/services/recommendations.py) so that a
    recommendation request only reads. Each title keeps its closest neighbours only."""

    title = models.ForeignKey("catalogs.ContentTitle", on_delete=models.CASCADE, related_name="+")
    similar = models.ForeignKey("catalogs.ContentTitle", on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(help_text="Customers of both ÷ √(customers of one × customers of the other), 0–1.")
    customers = models.PositiveIntegerField(help_text="Customers who watched or bought both.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "title similarities"
        constraints = [models.UniqueConstraint(fields=["title", "similar"], name="analytics_similarity_once")]

    def __str__(self) -> str:
        return f"{self.title_id} ~ {self.similar_id}: {self.score:.3f}"


class TitlePopularity(models.Model):
    """Customers who watched or bought a title in the week before the last rebuild: the
    recommendations for new customers and the filler after the personal ones."""

    title = models.OneToOneField("catalogs.ContentTitle", on_delete=models.CASCADE, related_name="+")
    customers = models.PositiveIntegerField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "title popularity"
        indexes = [models.Index(fields=["-customers", "title"], name="analytics_popularity_rank")]

    def __str__(self) -> str:
        return f"{self.title_id}: {self.customers} customers"


class AnalyticsDashboard(AccountMonth):
    """The admin dashboard entry (a proxy: its ``view_analyticsdashboard`` permission)."""

    class Meta:
        proxy = True
        verbose_name = "analytics dashboard"
        verbose_name_plural = "analytics dashboard"
