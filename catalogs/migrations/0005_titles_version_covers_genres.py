"""The ``titles`` reference group also covers genres, so a cached portal catalog page
(``catalogs.api.views.TitleListView``) is never served with a renamed or removed genre."""

from django.db import migrations

from core.refcache import reference_triggers

GENRE_TABLES = ("catalogs_genre", "catalogs_contenttitle_genres")


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("titles", GENRE_TABLES)[0])


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("titles", GENRE_TABLES)[1])


class Migration(migrations.Migration):
    dependencies = [("catalogs", "0004_reference_version_triggers")]

    operations = [migrations.RunPython(install, remove)]
