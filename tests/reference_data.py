"""What data migrations seed (roles, classifications), re-applied with the live app registry."""

from __future__ import annotations

import importlib

from django.apps import apps

# (migration module, function names) in the order the migrations run.
SEEDS: list[tuple[str, list[str]]] = [
    ("accounts.migrations.0002_search_indexes_and_classifications", ["seed_classifications"]),
    ("accounts.migrations.0003_roles", ["create_roles"]),
]


def reference_data_ensure() -> None:
    for module_name, functions in SEEDS:
        module = importlib.import_module(module_name)
        for name in functions:
            getattr(module, name)(apps, None)
SEEDS.append(("catalogs.migrations.0002_roles", ["grant"]))
SEEDS.append(("subscriptions.migrations.0002_roles", ["grant"]))
SEEDS.append(("billing.migrations.0004_ledger_rules", ["chart"]))
SEEDS.append(("billing.migrations.0006_roles", ["grant"]))
SEEDS.append(("billing.migrations.0008_billing_run_roles", ["grant"]))
SEEDS.append(("billing.migrations.0009_revenue_recognition", ["grant"]))
SEEDS.append(("provisioning.migrations.0005_roles", ["grant"]))
SEEDS.append(("payments.migrations.0002_reference_data", ["seed"]))
SEEDS.append(("analytics.migrations.0002_roles", ["grant"]))
