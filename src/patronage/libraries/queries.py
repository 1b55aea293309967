"""Reads of libraries and branches that hot pages make on every request, written by hand."""

from __future__ import annotations

from django.db import connections, router

from patronage.core import rows

from .models import Branch, Library

# The library and its checkout centers, read in one row per center (core.rows) with their aliases.
_LIBRARY_AND_CENTERS: tuple[rows.Join, ...] = ((Library, "l"), (Branch, "b"))


def library_and_centers(code: str) -> tuple[Library | None, list[Branch]]:
    """The library with this code, and its checkout centers (the branches that lend, by name), in one statement.

    Every portal page reads both (the centers for the session menu), and building the two reads through the
    ORM's query compiler cost more than the statements: one hand-written statement instead, its rows made
    into instances as the ORM makes them.
    """
    alias = router.db_for_read(Library)
    connection = connections[alias]
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {rows.select(connection, _LIBRARY_AND_CENTERS).columns} FROM {quote(Library._meta.db_table)} l"
        f" LEFT JOIN {quote(Branch._meta.db_table)} b ON b.library_id = l.id AND b.is_checkout_center"
        " WHERE l.code = %s ORDER BY b.name, b.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [code])
        found = cursor.fetchall()
    library: Library | None = None
    centers: list[Branch] = []
    for row in found:
        made_library, center = rows.instances(connection, alias, _LIBRARY_AND_CENTERS, row)
        assert isinstance(made_library, Library)  # noqa: S101 - the library is the statement's FROM
        library = library or made_library
        if isinstance(center, Branch):
            Branch._meta.get_field("library").set_cached_value(center, library)
            centers.append(center)
    return library, centers
