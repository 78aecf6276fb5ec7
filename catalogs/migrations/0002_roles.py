"""Marketing configures catalogs; agents and finance may look; administrators may do anything."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, FINANCE, MARKETING, roles_grant, roles_grant_app

MODELS = [
    "producttype", "product", "bundlecomponent", "genre", "contenttitle", "titleavailability", "priceplan",
    "priceplanrate", "usageservicecatalogdefinition", "definitiondefaultrate", "definitiondefaulttier",
    "usageservicecatalog", "usageservice", "usagetier", "promotion", "coupon", "couponredemption",
]
VIEW = [f"catalogs.view_{model}" for model in MODELS] + ["provisioning.view_provisioningprovider"]
EDIT = [f"catalogs.{verb}_{model}" for model in MODELS if model != "couponredemption" for verb in ("add", "change", "delete")]

GRANTS = {
    MARKETING: VIEW + EDIT + ["core.view_auditentry"],
    CALL_CENTER_AGENT: VIEW,
    FINANCE: VIEW + ["core.view_auditentry"],
}


def grant(apps, schema_editor):
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["catalogs", "provisioning", "core"])


class Migration(migrations.Migration):
    dependencies = [
        ("catalogs", "0001_initial"),
        ("provisioning", "0001_initial"),
        ("core", "0002_auditentry"),
        ("accounts", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
