"""Input and output shapes of the portal catalog API. No logic: prices come from
``catalogs.rating`` and reach the title serializer through its context (``quotes``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.serializers import ModelSerializer
from core.choices import Screen

from .. import rating
from ..models import ContentTitle, PricePlanRate, Product


class ScreenQuerySerializer(serializers.Serializer):
    screen = serializers.ChoiceField(choices=Screen.choices, default=Screen.WEB, help_text="The caller's kind of screen.")


class PriceSerializer(serializers.Serializer):
    """What the caller would pay for the title if they ordered it now."""

    amount = serializers.DecimalField(max_digits=12, decimal_places=4)
    currency = serializers.CharField()
    reason = serializers.CharField(help_text="Which rate applied and why.")


class TitleSerializer(ModelSerializer):
    genres = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    cast = serializers.ListField(child=serializers.CharField(), read_only=True)
    ppv_product = serializers.SerializerMethodField(help_text="Code of the pay-per-view product that sells this title, if any.")
    price = serializers.SerializerMethodField(help_text="The caller's price now; null if the title is not sold per view to them.")

    class Meta:
        model = ContentTitle
        fields = [
            "id", "code", "title", "synopsis", "genres", "cast", "year", "duration_minutes", "age_rating",
            "release_date", "is_older_movie", "artwork_url", "ppv_product", "price",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_ppv_product(self, title: ContentTitle) -> str | None:
        product = rating.title_ppv_product(title)
        return product.code if product else None

    @extend_schema_field(PriceSerializer(allow_null=True))
    def get_price(self, title: ContentTitle) -> dict | None:
        quote = self.context.get("quotes", {}).get(title.pk)
        return None if quote is None else PriceSerializer(quote).data


class PackageRateSerializer(ModelSerializer):
    plan = serializers.CharField(source="price_plan.name")
    plan_code = serializers.CharField(source="price_plan.code")
    currency = serializers.CharField(source="price_plan.currency")

    class Meta:
        model = PricePlanRate
        fields = ["plan", "plan_code", "amount", "currency", "charge_type", "billing_period", "free_trial_days"]
        read_only_fields = fields


class PackageSerializer(ModelSerializer):
    titles_count = serializers.IntegerField(read_only=True)
    rates = PackageRateSerializer(source="applicable_rates", many=True, read_only=True,
                                  help_text="Rates of effective price plans that apply to the caller's classification now.")

    class Meta:
        model = Product
        fields = ["code", "name", "description", "titles_count", "rates"]
        read_only_fields = fields


class RatePreviewQuerySerializer(ScreenQuerySerializer):
    title = serializers.IntegerField(required=False, min_value=1, help_text="A title id from the catalog (or give product).")
    product = serializers.SlugField(required=False, help_text="A usage service product code (or give title).")
    at = serializers.DateTimeField(required=False, help_text="When the usage would happen (ISO 8601); default now.")

    def validate(self, data: dict) -> dict:
        if ("title" in data) == ("product" in data):
            message = "Give either title or product, not both." if "title" in data else "Give a title or a product."
            raise serializers.ValidationError({"title": [message], "product": [message]})
        return data


class TierSerializer(serializers.Serializer):
    start = serializers.TimeField(source="start_time", format="%H:%M")
    end = serializers.TimeField(source="end_time", format="%H:%M", help_text="Inclusive to the end of this minute.")
    rate = serializers.DecimalField(max_digits=12, decimal_places=4)


class RateQuoteSerializer(serializers.Serializer):
    product = serializers.CharField(source="usage_service.product.code")
    amount = serializers.DecimalField(max_digits=12, decimal_places=4)
    currency = serializers.CharField()
    catalog = serializers.CharField(help_text="The usage service catalog that applies to the caller.")
    tier = TierSerializer(allow_null=True, help_text="The tiered rate that matched, or null for the base rate.")
    local_time = serializers.DateTimeField(help_text="The usage time on the operator's wall clock.")
    time_zone = serializers.CharField()
    reason = serializers.CharField()
    required_services = serializers.SerializerMethodField(
        help_text="Product codes: ordering needs an effective subscription service among these (empty: none needed)."
    )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_required_services(self, quote: rating.RateQuote) -> list[str]:
        return [product.code for product in quote.required_services]
