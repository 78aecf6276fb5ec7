"""Segment months: the per-segment monthly sums the dashboard reads, filled here from the
customer months already rolled up (the monthly rollup keeps them from now on)."""

from decimal import Decimal
from django.db import migrations, models


def fill(apps, schema_editor):
    from analytics.services.rollups import segment_months_write

    account_month, segment_month = apps.get_model("analytics", "AccountMonth"), apps.get_model("analytics", "SegmentMonth")
    for month in account_month.objects.order_by().values_list("month", flat=True).distinct():
        segment_months_write(month, account_month=account_month, segment_month=segment_month)


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0005_customer_month_viewing'),
    ]

    operations = [
        migrations.CreateModel(
            name='SegmentMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('classification', models.CharField(blank=True, max_length=50)),
                ('country', models.CharField(blank=True, max_length=2)),
                ('channel', models.CharField(blank=True, help_text='Where the subscription was activated (or the order placed).', max_length=16)),
                ('currency', models.CharField(max_length=3)),
                ('month', models.DateField(help_text='First day of the month.')),
                ('mrr', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14)),
                ('new', models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text='MRR of NEW movements.', max_digits=14)),
                ('expansion', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14)),
                ('contraction', models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text="Negative, as the movements' amounts.", max_digits=14)),
                ('churned', models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text="Negative, as the movements' amounts.", max_digits=14)),
                ('reactivation', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14)),
                ('customers', models.PositiveIntegerField(default=0, help_text="Paying at the month's end (MRR > 0).")),
                ('customers_at_start', models.PositiveIntegerField(default=0, help_text="Paying at the month's start.")),
                ('new_customers', models.PositiveIntegerField(default=0)),
                ('churned_customers', models.PositiveIntegerField(default=0)),
                ('recurring_revenue', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14)),
                ('ppv_revenue', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14)),
                ('one_time_revenue', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14)),
                ('ppv_orders', models.PositiveIntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('month', 'classification', 'country', 'channel', 'currency'), name='analytics_segment_once_per_month')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
