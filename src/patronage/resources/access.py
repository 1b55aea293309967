"""The gatekeeper for the catalog: how faces load a checkout center, a resource type or a resource.

The same answers as ``patrons.access``: a staff account that is not a member of the thing's library gets
"not found" (as for a missing one); a member without the permission gets "permission denied".
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

from patronage.core import audit
from patronage.core.errors import NotFound, PermissionDenied
from patronage.libraries.access import permissions_by_library
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission

from .models import Resource, ResourceType

M = TypeVar("M", bound=Model)


def for_staff(actor: audit.Actor, queryset: QuerySet[M], pk: object, permission: Permission, what: str) -> M:
    """One row of a model with a ``library`` for a staff action, checked as described above."""
    try:
        key = int(str(pk))
    except ValueError:
        raise NotFound(f"No such {what}.") from None
    member_of = permissions_by_library(actor.user)
    found = queryset.filter(pk=key, library_id__in=[lib for lib, perms in member_of.items() if perms]).first()
    if found is None:
        raise NotFound(f"No such {what}.")
    library_id: int = found.library_id  # type: ignore[attr-defined]
    if permission not in member_of[library_id]:
        raise PermissionDenied(f"You need the permission {permission.label!r} at this library.")
    return found


def center_for_staff(actor: audit.Actor, center_id: object, permission: Permission) -> Branch:
    """A checkout center (a lending branch) of a library the actor belongs to."""
    queryset = Branch.objects.filter(is_checkout_center=True).select_related("library")
    return for_staff(actor, queryset, center_id, permission, "checkout center")


def resource_type_for_staff(actor: audit.Actor, type_id: object, permission: Permission) -> ResourceType:
    return for_staff(actor, ResourceType.objects.select_related("library"), type_id, permission, "resource type")


def resource_for_staff(actor: audit.Actor, resource_id: object, permission: Permission) -> Resource:
    queryset = Resource.objects.select_related("library", "resource_type", "center")
    return for_staff(actor, queryset, resource_id, permission, "resource")
