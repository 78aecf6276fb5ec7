"""The Company ZX catalog (DESIGN.md §4), loaded through the same services staff use.

Idempotent: each piece is looked up by its code or name first and created only if missing,
so ``make run`` can load it again and again.

The scenario text prices the older movie (Serendipity) at €3.00 while one configuration
table in the source shows €5.00; we follow the stated requirement (€3.00).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from accounts.models import Classification
from core.choices import Channel, LifecycleState, Screen
from provisioning.demo import demo_provider_complete
from provisioning.models import ProvisioningProvider

from .models import (
    ContentTitle,
    PricePlan,
    Product,
    ProductType,
    Promotion,
    UsageServiceCatalog,
    UsageServiceCatalogDefinition,
)
from .services import content, pricing, usage_catalogs
from .services.usage_catalogs import EFFECTIVE

SYSTEM = {"channel": Channel.SYSTEM}
NIGHT = [{"rate": Decimal("5.00"), "start_time": "00:01", "end_time": "06:59"}]
ALL_SCREENS = [screen.value for screen in Screen]
NAGRA_ENDPOINT = "http://ott.nagra.com/customer/VTV/api/smsservice_1.2?wsdl"

PRODUCT_TYPES = [
    {"name": "Usage Services", "classification": "SERVICE", "service_type": "USAGE", "used_for_provisioning": True},
    {"name": "Termed Services", "classification": "SERVICE", "service_type": "TERMED", "used_for_provisioning": True},
    {"name": "One-time Services", "classification": "SERVICE", "service_type": "ONE_TIME"},
    {"name": "Physical Goods", "classification": "PHYSICAL_GOOD", "used_for_provisioning": True},
]

MOVIES = [
    {"code": "LOTR", "title": "Lord of the Rings", "provisioning_id": "1AQ8", "year": 2001, "duration_minutes": 178,
     "genres": ["Fantasy", "Adventure"], "cast": ["Elijah Wood", "Ian McKellen", "Viggo Mortensen"], "age_rating": "12",
     "release_date": date(2001, 12, 19),
     "synopsis": "A hobbit sets out to destroy a ring of power before it can be used to enslave Middle-earth."},
    {"code": "LIMITLESS", "title": "Limitless", "provisioning_id": "1BQ1", "year": 2011, "duration_minutes": 105,
     "genres": ["Thriller", "Science fiction"], "cast": ["Bradley Cooper", "Robert De Niro", "Abbie Cornish"], "age_rating": "15",
     "release_date": date(2011, 3, 18),
     "synopsis": "A struggling writer discovers a pill that lets him use all of his mind, and the trouble that comes with it."},
    {"code": "SERENDIPITY", "title": "Serendipity", "provisioning_id": "1BQ4", "year": 2001, "duration_minutes": 90,
     "genres": ["Romance", "Comedy"], "cast": ["John Cusack", "Kate Beckinsale"], "age_rating": "PG", "is_older_movie": True,
     "release_date": date(2001, 10, 5),
     "synopsis": "Years after a chance meeting in New York, two strangers leave their reunion to fate."},
]


def _product_types() -> dict[str, ProductType]:
    types = {}
    for spec in PRODUCT_TYPES:
        types[spec["name"]] = ProductType.objects.filter(name=spec["name"]).first() or content.product_type_create(**spec, **SYSTEM)
    return types


def _product(code: str, name: str, product_type: ProductType, description: str = "", titles=()) -> Product:
    existing = Product.objects.filter(code=code).first()
    if existing is not None:
        return existing
    return content.product_create(code=code, name=name, product_type=product_type, description=description, titles=titles, **SYSTEM)


def _movie_title(movie: dict) -> ContentTitle:
    title = ContentTitle.objects.filter(code=movie["code"]).first()
    if title is None:
        fields = {key: value for key, value in movie.items() if key not in {"provisioning_id"}}
        title = content.content_title_create(
            **fields, screens=ALL_SCREENS, artwork_url=f"https://images.ott.example/{movie['code'].lower()}.jpg", **SYSTEM
        )
    if title.state == ContentTitle.State.DRAFT:
        title = content.title_submit(title=title, **SYSTEM)
    if title.state == ContentTitle.State.READY:
        title = content.title_publish(title=title, **SYSTEM)
    return title


def _definition(usage: ProductType, nagra: ProvisioningProvider) -> UsageServiceCatalogDefinition:
    definition = UsageServiceCatalogDefinition.objects.filter(name="OTT usage services").first()
    if definition is None:
        definition = usage_catalogs.usage_definition_create(
            name="OTT usage services", usage_service_types=[usage], providers=[nagra], **SYSTEM)
        usage_catalogs.usage_definition_default_rate_set(
            definition=definition, product_type=usage, base_rate="10.00", tiers=_tiers(NIGHT), **SYSTEM)
    if definition.state != EFFECTIVE:
        definition = usage_catalogs.usage_definition_act(definition=definition, action="set_effective", **SYSTEM)
    return definition


def _tiers(specs: list[dict]) -> list[dict]:
    from datetime import time

    return [{"rate": spec["rate"], "start_time": time.fromisoformat(spec["start_time"]),
             "end_time": time.fromisoformat(spec["end_time"])} for spec in specs]


def _usage_catalog(name: str, movies: dict[str, Product], ppv_service: Product, *, rates: dict[str, dict],
                   classification: str | None = None, priority: int = 100) -> UsageServiceCatalog:
    catalog = UsageServiceCatalog.objects.filter(name=name).order_by("-version").first()
    if catalog is None:
        catalog = usage_catalogs.usage_catalog_create(
            name=name, required_services=[ppv_service], priority=priority,
            classifications=Classification.objects.filter(code=classification) if classification else (), **SYSTEM)
        for movie in MOVIES:
            override = rates.get(movie["code"], {})
            usage_catalogs.usage_service_add(catalog=catalog, product=movies[movie["code"]], provisioning_id=movie["provisioning_id"],
                                             **override, **SYSTEM)
    if catalog.state == LifecycleState.DRAFT:
        catalog = usage_catalogs.usage_catalog_act(catalog=catalog, action="set_effective", **SYSTEM)
    return catalog


def _price_plan(products: dict[str, Product]) -> PricePlan:
    plan = PricePlan.objects.filter(code="OTT-BASIC").first()
    if plan is None:
        plan = pricing.price_plan_create(code="OTT-BASIC", name="OTT Basic", **SYSTEM)
        rates = [
            (products["PPV-SERVICE"], "RECURRING", "0.00", "MONTH", 0),  # freemium: PPV access is free
            (products["SPORTS-PACK"], "RECURRING", "9.99", "MONTH", 7),  # a week's free trial
            (products["INSTALLATION"], "ONE_TIME", "25.00", "", 0),
            (products["THOMSON-DECODER"], "ONE_TIME", "49.00", "", 0),
        ]
        for product, charge_type, amount, period, trial in rates:
            pricing.price_plan_rate_set(price_plan=plan, product=product, charge_type=charge_type, amount=amount,
                                        billing_period=period, free_trial_days=trial, **SYSTEM)
    if plan.state == LifecycleState.DRAFT:
        plan = pricing.price_plan_set_effective(price_plan=plan, **SYSTEM)
    return plan


def _promotion(sports_pack: Product) -> Promotion:
    promotion = Promotion.objects.filter(code="WELCOME50").first()
    if promotion is None:
        promotion = pricing.promotion_create(code="WELCOME50", name="Welcome: half price sports for 2 months", kind="PERCENT",
                                             value="50", periods=2, products=[sports_pack], requires_coupon=True, **SYSTEM)
        pricing.coupon_create(promotion=promotion, code="WELCOME50", max_redemptions=1000, max_per_account=1, **SYSTEM)
    if promotion.state == LifecycleState.DRAFT:
        promotion = pricing.promotion_set_effective(promotion=promotion, **SYSTEM)
    return promotion


def demo_catalog_load() -> dict[str, object]:
    types = _product_types()
    nagra, _ = ProvisioningProvider.objects.get_or_create(
        name="Nagra Media Platform", defaults={"endpoint": NAGRA_ENDPOINT, "encoding": "UTF-8"})
    titles = {movie["code"]: _movie_title(movie) for movie in MOVIES}
    movies = {movie["code"]: _product(movie["code"], movie["title"], types["Usage Services"], f"PPV movie: {movie['title']}",
                                      titles=[titles[movie["code"]]]) for movie in MOVIES}
    products = {
        "PPV-SERVICE": _product("PPV-SERVICE", "PPV Service", types["Termed Services"],
                                "Necessary in order to authorise the addition of PPV movies to the subscription."),
        "SPORTS-PACK": _product("SPORTS-PACK", "Sports Pack", types["Termed Services"], "Live sports channels."),
        "INSTALLATION": _product("INSTALLATION", "Installation", types["One-time Services"], "Technician visit and set-up."),
        "THOMSON-DECODER": _product("THOMSON-DECODER", "Thomson decoder", types["Physical Goods"], "Set-top box."),
    }
    demo_provider_complete(provider=nagra, physical_goods=[products["THOMSON-DECODER"]])
    _definition(types["Usage Services"], nagra)
    normal = _usage_catalog("Normal subscribers", movies, products["PPV-SERVICE"],
                            rates={"SERENDIPITY": {"base_rate": "3.00", "tiers": []}})
    vip = _usage_catalog("VIP subscribers", movies, products["PPV-SERVICE"], classification="VIP", priority=10,
                         rates={code: {"base_rate": "0.00", "tiers": []} for code in movies})
    plan = _price_plan(products)
    promotion = _promotion(products["SPORTS-PACK"])
    return {"catalogs": [normal, vip], "price_plan": plan, "promotion": promotion, "movies": movies}
