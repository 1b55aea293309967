"""Name indexes the staff search can answer a page from without reading patron rows.

PostgreSQL: the ``text_pattern_ops`` indexes of 0002 become covering (``INCLUDE`` both names and the id), so
the search's "first n matches of this prefix, in name order" subqueries are index-only scans: a 3-letter
prefix of a common name matches thousands of patrons of a large library, and reading their rows one by one
was most of the search's time (docs/performance.md). ``patron_name_covering`` is the model's
``patron_name_lower`` with the same columns included: a first-name prefix shared by many patrons is found
fastest by walking the names in order until the page is full, and this way the walk reads no rows. The
planner only uses an index-only scan for ``lower(last_name)`` when ``last_name`` itself is in the index,
hence both names in each.

SQLite: ``(library_id, lower(first_name), last_name, first_name)``, the counterpart of the model's
``patron_name_lower`` for first-name prefixes (a range over an expression index, see
``patrons.queries._StartsWith``); with both names in it the matches are sorted without reading their rows.

Neither is declared on the model: operator classes and ``INCLUDE`` are PostgreSQL-only, like 0002's.
"""

from django.db import migrations

_PG_INDEXES = {
    "patron_last_name_prefix": "lower(last_name) text_pattern_ops",
    "patron_first_name_prefix": "lower(first_name) text_pattern_ops",
    "patron_name_covering": "lower(last_name), lower(first_name)",
}
_PG_REPLACED = {
    "patron_last_name_pattern": "lower(last_name) text_pattern_ops",
    "patron_first_name_pattern": "lower(first_name) text_pattern_ops",
}
_OTHER_INDEXES = {"patron_first_name_lower": "lower(first_name), last_name, first_name"}


def _table(apps):
    return apps.get_model("patrons", "Patron")._meta.db_table


def _create(apps, schema_editor):
    table = _table(apps)
    if schema_editor.connection.vendor == "postgresql":
        for name, expression in _PG_INDEXES.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} (library_id, {expression})"
                " INCLUDE (last_name, first_name, id)"
            )
        for name in _PG_REPLACED:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        return
    for name, expression in _OTHER_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (library_id, {expression})")


def _drop(apps, schema_editor):
    table = _table(apps)
    if schema_editor.connection.vendor == "postgresql":
        for name, expression in _PG_REPLACED.items():
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (library_id, {expression})")
        for name in _PG_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        return
    for name in _OTHER_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("patrons", "0002_search_indexes")]

    operations = [migrations.RunPython(_create, _drop)]
