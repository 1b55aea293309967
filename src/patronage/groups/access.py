"""Loading a group for a staff action: the same answers as the patron gatekeeper.

A group of a library the staff member does not belong to is "not found", exactly like one that does not
exist; a member of the library without the permission gets "permission denied".
"""

from __future__ import annotations

from django.db.models import QuerySet

from patronage.core import audit
from patronage.core.errors import NotFound, PermissionDenied
from patronage.libraries.access import has_permission, libraries_with, permissions_by_library
from patronage.libraries.permissions import Permission

from .models import PatronGroup


class GroupNotFound(NotFound):
    code = "group_not_found"

    def __init__(self) -> None:
        super().__init__("No such patron group.")


def groups_for_staff(
    actor: audit.Actor, permission: Permission = Permission.VIEW_PATRONS, *, library_id: int | None = None
) -> QuerySet[PatronGroup]:
    libraries = libraries_with(actor.user, permission)
    if library_id is not None:
        libraries = [lib for lib in libraries if lib == library_id]
    return PatronGroup.objects.filter(library_id__in=libraries)


def group_for_staff(
    actor: audit.Actor,
    group_id: object,
    permission: Permission = Permission.VIEW_PATRONS,
    *,
    library_id: int | None = None,
) -> PatronGroup:
    try:
        pk = int(str(group_id))
    except ValueError:
        raise GroupNotFound() from None
    member_of = [lib for lib, perms in permissions_by_library(actor.user).items() if perms]
    if library_id is not None:
        member_of = [lib for lib in member_of if lib == library_id]
    group = PatronGroup.objects.select_related("library").filter(pk=pk, library_id__in=member_of).first()
    if group is None:
        raise GroupNotFound()
    if not has_permission(actor.user, group.library_id, permission):
        raise PermissionDenied(f"You need the permission {permission.label!r} at {group.library.name}.")
    return group
