"""Output shapes of the staff analytics API (read-only)."""

from rest_framework import serializers

MONEY = {"max_digits": 14, "decimal_places": 2}
RATE = {"max_digits": 7, "decimal_places": 4, "allow_null": True}


class MonthMetricsSerializer(serializers.Serializer):
    month = serializers.DateField(help_text="First day of the month.")
    mrr = serializers.DecimalField(**MONEY, help_text="At the month's end, net of tax.")
    new = serializers.DecimalField(**MONEY)
    expansion = serializers.DecimalField(**MONEY)
    contraction = serializers.DecimalField(**MONEY)
    churned = serializers.DecimalField(**MONEY)
    reactivation = serializers.DecimalField(**MONEY)
    net_new_mrr = serializers.DecimalField(**MONEY)
    customers = serializers.IntegerField(help_text="Paying (MRR > 0) at the month's end.")
    new_customers = serializers.IntegerField()
    churned_customers = serializers.IntegerField()
    arpu = serializers.DecimalField(**MONEY, allow_null=True)
    logo_churn = serializers.DecimalField(**RATE)
    revenue_churn = serializers.DecimalField(**RATE)
    net_revenue_churn = serializers.DecimalField(**RATE)
    recurring_revenue = serializers.DecimalField(**MONEY)
    ppv_revenue = serializers.DecimalField(**MONEY)
    one_time_revenue = serializers.DecimalField(**MONEY)
    total_revenue = serializers.DecimalField(**MONEY)
    ppv_orders = serializers.IntegerField()


class MrrBreakdownSerializer(serializers.Serializer):
    key = serializers.CharField()
    mrr = serializers.DecimalField(**MONEY)


class CohortSerializer(serializers.Serializer):
    cohort = serializers.DateField()
    customers = serializers.IntegerField()
    retention = serializers.ListField(child=serializers.DecimalField(**RATE))


class CustomerValueSerializer(serializers.Serializer):
    account = serializers.CharField()
    lifetime_revenue = serializers.DecimalField(**MONEY)
    mrr = serializers.DecimalField(**MONEY)
    churn_rate = serializers.DecimalField(**RATE)
    predicted_ltv = serializers.DecimalField(**MONEY, allow_null=True)


class TitleViewingSerializer(serializers.Serializer):
    title = serializers.CharField()
    views = serializers.IntegerField()
    viewers = serializers.IntegerField()
    hours = serializers.DecimalField(max_digits=14, decimal_places=1)
    completion_rate = serializers.DecimalField(**RATE)
    peak_concurrent = serializers.IntegerField(help_text="The highest daily peak of views playing at once.")


class SubscriberInsightSerializer(serializers.Serializer):
    account = serializers.CharField()
    classification = serializers.CharField()
    orders = serializers.IntegerField()
    night_orders = serializers.IntegerField()
    views = serializers.IntegerField()
    hours = serializers.DecimalField(max_digits=14, decimal_places=1)
    top_genre = serializers.CharField()
    top_screen = serializers.CharField()
    top_daypart = serializers.CharField()
    night_ppv_buyer = serializers.BooleanField()
    at_risk = serializers.BooleanField()
