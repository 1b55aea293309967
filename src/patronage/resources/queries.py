"""Reads of the catalog shared by the resource and reservation services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

from .models import Authorization, Resource, ResourceType
from .rules import TypeNode, is_authorized, lineage, visible_in_portal


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


# --- what a patron may browse in the portal ----------------------------------------------------------------


@dataclass(frozen=True)
class PortalCatalog:
    """The resource types a patron may browse and reserve in the portal at one checkout center.

    ``reservable``: types the center lends that are visible in the portal (with every type above them) and
    need no authorization or one the patron holds; ``types``: those and the types above them, so the tree
    reads from the top. A type hidden from the portal, or one needing an authorization the patron lacks,
    is in neither, and nor are its resources.
    """

    types: dict[int, ResourceType]
    reservable: frozenset[int]

    def children(self, parent_id: int | None) -> list[ResourceType]:
        return sorted(
            (t for t in self.types.values() if t.parent_id == parent_id), key=lambda t: (t.name.lower(), t.pk)
        )

    def path(self, type_id: int) -> list[ResourceType]:
        """The type and the types above it, the top first."""
        found: list[ResourceType] = []
        current: int | None = type_id
        while current is not None and current in self.types and self.types[current] not in found:
            found.append(self.types[current])
            current = self.types[current].parent_id
        return found[::-1]


def portal_catalog(library_id: int, center_id: int, patron_id: int, on: dt.date) -> PortalCatalog:
    """The portal's catalog for a patron at a center (see ``PortalCatalog``), authorizations valid on ``on``.
    Three statements: the library's types, the types the center lends, the patron's authorizations."""
    everything = {t.pk: t for t in ResourceType.objects.filter(library_id=library_id)}
    nodes = {
        pk: TypeNode(t.pk, t.parent_id, t.requires_authorization, t.visible_in_portal) for pk, t in everything.items()
    }
    lent_here = set(
        ResourceType.centers.through.objects.filter(branch_id=center_id).values_list("resourcetype_id", flat=True)
    )
    lent_here &= set(everything)
    authorized = authorized_type_ids(patron_id, on)
    reservable = frozenset(
        pk for pk in lent_here if visible_in_portal(pk, nodes) and is_authorized(pk, nodes, authorized)
    )
    shown = {above for pk in reservable for above in lineage(pk, nodes)}
    return PortalCatalog({pk: everything[pk] for pk in shown}, reservable)


def portal_resources(
    catalog: PortalCatalog,
    center_id: int,
    *,
    type_ids: Iterable[int] | None = None,
    keyword: str = "",
    ids: Iterable[int] | None = None,
) -> list[Resource]:
    """The resources a patron may reserve at the center: of reservable types (``type_ids`` narrows them),
    not parts of a kit (the kit books them), named like ``keyword`` if one is given, among ``ids`` if
    given. One statement."""
    allowed = catalog.reservable if type_ids is None else catalog.reservable & set(type_ids)
    found = Resource.objects.filter(
        center_id=center_id, resource_type_id__in=sorted(allowed), contained_in__isnull=True
    )
    if ids is not None:
        found = found.filter(pk__in=list(ids))
    if keyword:
        found = found.filter(name__icontains=keyword)
    return list(found.select_related("resource_type").order_by("name", "identifier")[:500])


def portal_types_named(catalog: PortalCatalog, keyword: str) -> list[ResourceType]:
    """The catalog's reservable types whose name contains ``keyword`` (any case); no statement."""
    wanted = keyword.casefold()
    return sorted(
        (catalog.types[pk] for pk in catalog.reservable if wanted in catalog.types[pk].name.casefold()),
        key=lambda t: (t.name.lower(), t.pk),
    )
