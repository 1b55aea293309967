"""Indexes for the staff search at scale (measured in bench/, see docs/performance.md).

``barcode_number`` serves the search's barcode match, which does not name a library. The two PostgreSQL-only
indexes serve name-prefix matches: under a non-C collation (the usual case, e.g. en_US.UTF-8 or C.UTF-8) a
plain btree on lower(name) cannot answer ``LIKE 'smi%'``; ``text_pattern_ops`` can. SQLite has no operator
classes, so the migration skips them there.
"""

from django.db import migrations, models

_PATTERN_INDEXES = {
    "patron_last_name_pattern": "lower(last_name) text_pattern_ops",
    "patron_first_name_pattern": "lower(first_name) text_pattern_ops",
}


def _create_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("patrons", "Patron")._meta.db_table
    for name, expression in _PATTERN_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (library_id, {expression})")


def _drop_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _PATTERN_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("patrons", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="barcode",
            index=models.Index(fields=["number"], name="barcode_number"),
        ),
        migrations.RunPython(_create_pattern_indexes, _drop_pattern_indexes),
    ]
