"""The access gatekeeper: the only way faces load a patron.

A staff account sees a patron only where it is a member of the patron's library and holds the
permission asked for. "Missing" and "not yours" give the same ``PatronNotFound``, so nobody learns
that a patron exists at another library. Reads of personal data are written to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet

from patronage.core import audit
from patronage.core.errors import NotFound, PermissionDenied
from patronage.libraries.access import has_permission, libraries_with, permissions_by_library
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission

from .models import Barcode, Patron, PatronType


class PatronNotFound(NotFound):
    code = "patron_not_found"

    def __init__(self) -> None:
        super().__init__("No such patron.")


def patrons_for_staff(
    actor: audit.Actor, permission: Permission = Permission.VIEW_PATRONS, *, library_id: int | None = None
) -> QuerySet[Patron]:
    """Every patron the actor may act on with ``permission`` (optionally at one library)."""
    libraries = libraries_with(actor.user, permission)
    if library_id is not None:
        libraries = [lib for lib in libraries if lib == library_id]
    return Patron.objects.filter(library_id__in=libraries)


def patron_for_staff(
    actor: audit.Actor,
    patron_id: object,
    permission: Permission = Permission.VIEW_PATRONS,
    *,
    library_id: int | None = None,
    read_purpose: str | None = None,
    for_update: bool = False,
) -> Patron:
    """Load one patron for a staff action, or raise ``PatronNotFound``/``PermissionDenied``.

    Without membership at the patron's library the answer is "not found"; with membership but
    without ``permission`` it is "permission denied" (the staff member can see the patron anyway).
    ``read_purpose`` records a personal-data read in the audit log.
    """
    try:
        pk = int(str(patron_id))
    except ValueError:
        raise PatronNotFound() from None
    member_of = permissions_by_library(actor.user)
    if library_id is not None:
        member_of = {lib: perms for lib, perms in member_of.items() if lib == library_id}
    queryset = Patron.objects.select_related("library", "patron_type", "registered_branch")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    patron = queryset.filter(pk=pk, library_id__in=[lib for lib, perms in member_of.items() if perms]).first()
    if patron is None:
        raise PatronNotFound()
    if not has_permission(actor.user, patron.library_id, permission):
        raise PermissionDenied(f"You need the permission {permission.label!r} at {patron.library.name}.")
    if read_purpose:
        audit.record_read(
            actor, "patron.read", library_id=patron.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, purpose=read_purpose,
        )  # fmt: skip
    return patron


def patron_by_barcode_for_staff(
    actor: audit.Actor, library_id: int, number: str, permission: Permission = Permission.VIEW_PATRONS
) -> Patron:
    """Find a patron by a barcode (current or old) at one library the actor belongs to.

    The desk's hottest read: one statement (barcode joined to the patron, its library, type and branch),
    after the membership check against the permissions cached for the request. The answers are those of
    ``patron_for_staff``: "not found" for a stranger to the library, "permission denied" for a member
    without ``permission``.
    """
    if not permissions_by_library(actor.user).get(library_id):
        raise PatronNotFound()
    patron = _patron_by_barcode(library_id, number.strip())
    if patron is None:
        raise PatronNotFound()
    if not has_permission(actor.user, patron.library_id, permission):
        raise PermissionDenied(f"You need the permission {permission.label!r} at {patron.library.name}.")
    return patron


# The patron with the rows `select_related("library", "patron_type", "registered_branch")` would load. Written
# out by hand because building that query through the ORM costs several times the statement itself
# (docs/performance.md); the instances are made as the ORM makes them, with the same converters.
_BARCODE_JOINS: tuple[tuple[type[Model], str, str | None], ...] = (
    (Patron, "p", None),
    (Library, "l", "library"),
    (PatronType, "t", "patron_type"),
    (Branch, "r", "registered_branch"),
)
_Converters = list[tuple[int, list[Callable[[Any, Any, BaseDatabaseWrapper], Any]], Any]]


@lru_cache(maxsize=64)
def _barcode_statement(connection: BaseDatabaseWrapper) -> tuple[str, _Converters]:
    """The statement for one connection (one per database and thread), and the converters of the columns
    that need them."""
    quote = connection.ops.quote_name
    columns: list[str] = []
    converters: _Converters = []
    for model, table_alias, _ in _BARCODE_JOINS:
        for field in model._meta.concrete_fields:
            col = field.get_col(table_alias)
            functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if functions:
                converters.append((len(columns), functions, col))
            columns.append(f"{table_alias}.{quote(field.column)}")
    table = {model: quote(model._meta.db_table) for model, _, _ in _BARCODE_JOINS}
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(Barcode._meta.db_table)} b"
        f" JOIN {table[Patron]} p ON p.id = b.patron_id"
        f" JOIN {table[Library]} l ON l.id = p.library_id"
        f" JOIN {table[PatronType]} t ON t.id = p.patron_type_id"
        f" JOIN {table[Branch]} r ON r.id = p.registered_branch_id"
        " WHERE b.library_id = %s AND b.number = %s AND p.library_id = %s"
    )
    return sql, converters


def _patron_by_barcode(library_id: int, number: str) -> Patron | None:
    alias = router.db_for_read(Patron)
    connection = connections[alias]
    sql, converters = _barcode_statement(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [library_id, number, library_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, functions, col in converters:
        for convert in functions:
            values[index] = convert(values[index], col, connection)
    start = 0
    instances: dict[str | None, Model] = {}
    for model, _, relation in _BARCODE_JOINS:
        fields = model._meta.concrete_fields
        instances[relation] = model.from_db(alias, [f.attname for f in fields], values[start : start + len(fields)])
        start += len(fields)
    patron = instances.pop(None)
    if not isinstance(patron, Patron):  # pragma: no cover - the first of _BARCODE_JOINS is the patron
        raise TypeError(patron)
    for relation, instance in instances.items():
        Patron._meta.get_field(str(relation)).set_cached_value(patron, instance)  # type: ignore[union-attr]
    return patron
