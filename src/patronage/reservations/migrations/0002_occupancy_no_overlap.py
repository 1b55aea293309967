"""On PostgreSQL, the database itself refuses two active bookings of one resource that overlap.

An exclusion constraint over (resource, [blocked_from, blocked_until)) for active rows with a resource.
``btree_gist`` lets the GiST index compare the resource id with ``=``. SQLite has no such constraint; there
the services' immediate transactions serialise the check and the write. The migration does nothing on
other databases, so the model state (and ``makemigrations --check``) is the same everywhere.
"""

from django.db import migrations

CONSTRAINT = "occupancy_no_overlap"


def add_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("reservations", "Occupancy")._meta.db_table)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
        "(resource_id WITH =, tstzrange(blocked_from, blocked_until, '[)') WITH &&) "
        "WHERE (active AND resource_id IS NOT NULL)"
    )


def drop_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("reservations", "Occupancy")._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("reservations", "0001_initial")]

    operations = [migrations.RunPython(add_constraint, drop_constraint, elidable=False)]
