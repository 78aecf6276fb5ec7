"""Every write to the catalogs, one module per area: ``content`` (products and titles),
``pricing`` (price plans, promotions, coupons, bundles), ``usage_catalogs`` (usage service
catalog definitions, catalogs and their services)."""
