"""The access gatekeeper: the only way faces load a patron.

A staff account sees a patron only where it is a member of the patron's library and holds the
permission asked for. "Missing" and "not yours" give the same ``PatronNotFound``, so nobody learns
that a patron exists at another library. Reads of personal data are written to the audit log.
"""

from __future__ import annotations

from django.db.models import QuerySet

from patronage.core import audit
from patronage.core.errors import NotFound, PermissionDenied
from patronage.libraries.access import has_permission, libraries_with, permissions_by_library
from patronage.libraries.permissions import Permission

from .models import Barcode, Patron


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
        audit.record(
            actor, "patron.read", library_id=patron.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, purpose=read_purpose,
        )  # fmt: skip
    return patron


def patron_by_barcode_for_staff(
    actor: audit.Actor, library_id: int, number: str, permission: Permission = Permission.VIEW_PATRONS
) -> Patron:
    """Find a patron by a barcode (current or old) at one library the actor belongs to."""
    patron_id = (
        Barcode.objects.filter(library_id=library_id, number=number.strip()).values_list("patron_id", flat=True).first()
    )
    if patron_id is None:
        raise PatronNotFound()
    return patron_for_staff(actor, patron_id, permission, library_id=library_id)
