"""Reads of the catalog shared by the resource and reservation services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Q

from .models import Authorization, Resource, ResourceType
from .rules import TypeNode


def type_nodes(library_id: int) -> dict[int, TypeNode]:
    """The library's whole type tree, one query (a library has tens or hundreds of types, not more)."""
    rows = ResourceType.objects.filter(library_id=library_id).values_list(
        "id", "parent_id", "requires_authorization", "visible_in_portal"
    )
    return {row[0]: TypeNode(*row) for row in rows}


def authorized_type_ids(patron_id: int, on: dt.date) -> set[int]:
    """The types the patron holds an authorization for that is still valid on ``on``."""
    return set(
        Authorization.objects.filter(patron_id=patron_id)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=on))
        .values_list("resource_type_id", flat=True)
    )


def with_parts(resources: Iterable[Resource]) -> dict[int, list[Resource]]:
    """Each resource with every resource inside it (a kit's parts, and their parts), one query per level."""
    result: dict[int, list[Resource]] = {}
    for resource in resources:
        found: list[Resource] = []
        level = [resource.pk]
        seen = {resource.pk}
        while level:
            parts = list(Resource.objects.filter(contained_in_id__in=level).select_related("resource_type"))
            parts = [p for p in parts if p.pk not in seen]
            seen.update(p.pk for p in parts)
            found.extend(parts)
            level = [p.pk for p in parts]
        result[resource.pk] = found
    return result


def center_units(center_id: int, type_ids: Iterable[int]) -> list[tuple[int, int, dt.datetime | None]]:
    """(resource id, type id, out of service from) of every resource of these types at the center."""
    return list(
        Resource.objects.filter(center_id=center_id, resource_type_id__in=list(type_ids)).values_list(
            "id", "resource_type_id", "out_of_service_from"
        )
    )
