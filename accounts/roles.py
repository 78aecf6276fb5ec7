"""Staff roles: Django groups and the permissions each holds.

Groups are created and granted by data migrations (``accounts/migrations/0003_roles.py``
and, for later apps, their own migrations calling ``roles_grant``), so every database has
them without a manual step. Admin screens and actions check these permissions.
"""

from __future__ import annotations

CALL_CENTER_AGENT = "Call-center agent"
MARKETING = "Marketing"
FINANCE = "Finance"
ADMINISTRATOR = "Administrator"
ROLES = (CALL_CENTER_AGENT, MARKETING, FINANCE, ADMINISTRATOR)


def _ensure_permissions(apps) -> None:
    """Create the permission rows now; Django would only do it after all migrations ran."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # A migration's app configs have no models module; create_permissions skips those.
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original


def roles_grant(apps, grants: dict[str, list[str]]) -> None:
    """Give each role (group name) the listed ``app_label.codename`` permissions.

    Fails loudly on a permission that does not exist, so a typo cannot silently leave a
    role without access.
    """
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in grants.items():
        group, _ = Group.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".", 1)
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is None:
                raise LookupError(f"Permission {name} does not exist; cannot grant it to {role}.")
            group.permissions.add(permission)


def roles_grant_app(apps, role: str, app_labels: list[str]) -> None:
    """Give a role every permission of the given apps (the Administrator role)."""
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=role)
    group.permissions.add(*Permission.objects.filter(content_type__app_label__in=app_labels))
