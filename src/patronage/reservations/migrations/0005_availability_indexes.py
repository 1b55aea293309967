"""On PostgreSQL, answer "what is booked of this type at this center during a span" from one index.

Availability reads the active rows of a type at a center overlapping ``[start, end)``. The B-tree
``occupancy_active_type`` (center, type, blocked_from) bounds the span's end, but every row it finds was
then fetched from the table to test ``blocked_until`` and to read the rest of the row: about 1,200 heap
fetches to keep 120 rows for a one-week question at 2 M reservations (the lending benchmark). This index
carries ``blocked_until`` and the other columns availability reads, so the same scan is index-only.

A GiST index over ``tstzrange(blocked_from, blocked_until)`` bounds both ends but costs about 10 ms of
planning per statement (range selectivity), more than it saves, since statements are not prepared.

PostgreSQL only (``INCLUDE`` is a PostgreSQL feature); SQLite keeps the B-tree. The migration does nothing
there, as 0002, so the model state (and ``makemigrations --check``) is the same on both databases. The SQL
is plain DDL (no data is touched); it runs through RunPython only because RunSQL cannot skip a vendor.
"""

from django.db import migrations

INDEX = "occupancy_active_type_cover"


def add_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("reservations", "Occupancy")._meta.db_table)
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON {table} (center_id, resource_type_id, blocked_from) "
        "INCLUDE (blocked_until, resource_id, quantity, reservation_id) WHERE active"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("reservations", "0004_history_anonymisation")]

    operations = [migrations.RunPython(add_index, drop_index, elidable=False)]
