"""Reads of the catalog shared by the resource and reservation services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from patronage.core import rows

from .models import Authorization, Resource, ResourceType
from .rules import TypeNode, is_authorized, lineage, visible_in_portal


def type_nodes(library_id: int) -> dict[int, TypeNode]:
    """The library's whole type tree, one query (a library has tens or hundreds of types, not more)."""
    rows = ResourceType.objects.filter(library_id=library_id).values_list(
        "id", "parent_id", "requires_authorization", "visible_in_portal"
    )
    return {row[0]: TypeNode(*row) for row in rows}


# ``rules.authorization_valid_on`` in SQL, for an authorization aliased ``a`` and the day as the next parameter;
# every read of authorizations here uses it.
_VALID_ON = "(a.expires_on IS NULL OR a.expires_on >= %s)"


def authorized_type_ids(patron_id: int, on: dt.date) -> set[int]:
    """The types the patron holds an authorization for that is still valid on ``on``."""
    day = connections[router.db_for_read(Authorization)].ops.adapt_datefield_value(on)
    _, found = rows.fetch(Authorization, "resources.authorized_type_ids", _authorized_sql, [patron_id, day])
    return {row[0] for row in found}


def _authorized_sql(connection: BaseDatabaseWrapper) -> str:
    table = connection.ops.quote_name(Authorization._meta.db_table)
    return f"SELECT a.resource_type_id FROM {table} a WHERE a.patron_id = %s AND {_VALID_ON}"


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


class _Types(Mapping[int, ResourceType]):
    """Resource types read as rows, each made into an instance (as the ORM makes it) when first asked for:
    a page shows a few of the catalog's types, and making all of them cost more than reading them."""

    def __init__(self, alias: str, found: dict[int, Sequence[Any]]) -> None:
        self._alias = alias
        self._rows = found
        self._made: dict[int, ResourceType] = {}

    def __getitem__(self, pk: int) -> ResourceType:
        found = self._made.get(pk)
        if found is not None:
            return found
        row = self._rows[pk]  # KeyError for a type not in the catalog, as a dict would
        made = rows.instances(connections[self._alias], self._alias, _TYPE, row)[0]
        assert isinstance(made, ResourceType)  # noqa: S101 - the row is a type's
        self._made[pk] = made
        return made

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, pk: object) -> bool:
        return pk in self._rows


@dataclass(frozen=True)
class PortalCatalog:
    """The resource types a patron may browse and reserve in the portal at one checkout center.

    ``reservable``: types the center lends that are visible in the portal (with every type above them) and
    need no authorization or one the patron holds; ``types``: those and the types above them, so the tree
    reads from the top; ``parents``: each of those types' parent. A type hidden from the portal, or one
    needing an authorization the patron lacks, is in neither, and nor are its resources.

    What it was worked out from, for the availability checks of the same page not to read it again:
    ``nodes``, the library's whole type tree (as ``type_nodes``), and ``authorized``, the library's types the
    patron holds an authorization for valid on ``on`` (as ``authorized_type_ids``).
    """

    types: Mapping[int, ResourceType]
    reservable: frozenset[int]
    parents: Mapping[int, int | None]
    nodes: Mapping[int, TypeNode]
    authorized: frozenset[int]
    on: dt.date

    def children(self, parent_id: int | None) -> list[ResourceType]:
        return sorted(
            (self.types[pk] for pk, parent in self.parents.items() if parent == parent_id),
            key=lambda t: (t.name.lower(), t.pk),
        )

    def path(self, type_id: int) -> list[ResourceType]:
        """The type and the types above it, the top first."""
        found: list[ResourceType] = []
        current: int | None = type_id
        while current is not None and current in self.types and self.types[current] not in found:
            found.append(self.types[current])
            current = self.types[current].parent_id
        return found[::-1]


_TYPE: tuple[rows.Join, ...] = ((ResourceType, "t"),)


def portal_catalog(library_id: int, center_id: int, patron_id: int, on: dt.date) -> PortalCatalog:
    """The portal's catalog for a patron at a center (see ``PortalCatalog``), authorizations valid on ``on``.

    One hand-written statement (every booking page reads it): the library's types, each with whether the
    center lends it and whether the patron holds an authorization for it valid on ``on``. The tree rules
    (``rules``) then decide what is shown; instances are made only of the types a page asks for."""
    params = [
        center_id,
        patron_id,
        connections[router.db_for_read(ResourceType)].ops.adapt_datefield_value(on),
        library_id,
    ]
    connection, found = rows.fetch(ResourceType, "resources.portal_catalog", _catalog_sql, params)
    alias = connection.alias
    names = [f.attname for f in ResourceType._meta.concrete_fields]  # the row's columns, in ``rows.select``'s order
    width = len(names)
    at = {name: names.index(name) for name in ("id", "parent_id", "requires_authorization", "visible_in_portal")}
    everything: dict[int, Sequence[Any]] = {}
    nodes: dict[int, TypeNode] = {}
    lent_here: list[int] = []
    authorized: set[int] = set()
    for row in found:
        node = TypeNode(
            row[at["id"]],
            row[at["parent_id"]],
            bool(row[at["requires_authorization"]]),
            bool(row[at["visible_in_portal"]]),
        )
        nodes[node.id] = node
        everything[node.id] = row[:width]
        if row[width]:
            lent_here.append(node.id)
        if row[width + 1]:
            authorized.add(node.id)
    reservable = frozenset(
        pk for pk in lent_here if visible_in_portal(pk, nodes) and is_authorized(pk, nodes, authorized)
    )
    shown = {above for pk in reservable for above in lineage(pk, nodes)}
    return PortalCatalog(
        types=_Types(alias, {pk: everything[pk] for pk in shown}),
        reservable=reservable,
        parents={pk: nodes[pk].parent_id for pk in shown},
        nodes=nodes,
        authorized=frozenset(authorized),
        on=on,
    )


def _catalog_sql(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    lent = ResourceType.centers.through._meta.db_table  # Django's own table: resourcetype_id, branch_id
    return (
        f"SELECT {rows.select(connection, _TYPE).columns}, EXISTS (SELECT 1 FROM {quote(lent)} c"
        " WHERE c.resourcetype_id = t.id AND c.branch_id = %s),"
        f" EXISTS (SELECT 1 FROM {quote(Authorization._meta.db_table)} a WHERE a.resource_type_id = t.id"
        f" AND a.patron_id = %s AND {_VALID_ON})"
        f" FROM {quote(ResourceType._meta.db_table)} t WHERE t.library_id = %s"
    )


def portal_resources(
    catalog: PortalCatalog,
    center_id: int,
    *,
    type_ids: Iterable[int] | None = None,
    keyword: str = "",
    ids: Iterable[int] | None = None,
) -> list[Resource]:
    """The resources a patron may reserve at the center: of reservable types (``type_ids`` narrows them),
    not parts of a kit (the kit books them), named like ``keyword`` (any case) if one is given, among ``ids``
    if given; by name and identifier, at most 500, each with its type. One hand-written statement (core.rows):
    the item list reads it on every page, and the ORM's compiler cost more than running it."""
    allowed = sorted(catalog.reservable if type_ids is None else catalog.reservable & set(type_ids))
    wanted = None if ids is None else sorted(set(ids))
    if not allowed or wanted == []:
        return []
    alias = router.db_for_read(Resource)
    db = connections[alias]
    quote = db.ops.quote_name
    where = [f"x.center_id = %s AND x.contained_in_id IS NULL AND x.resource_type_id IN ({_marks(allowed)})"]
    params: list[Any] = [center_id, *allowed]
    if wanted is not None:
        where.append(f"x.id IN ({_marks(wanted)})")
        params += wanted
    if keyword:  # as the ORM's ``name__icontains``: the database's own case-insensitive LIKE, escaped
        name = db.ops.lookup_cast("icontains", "CharField") % f"x.{quote('name')}"
        where.append(f"{name} {db.operators['icontains'] % '%s'}")
        params.append(f"%{db.ops.prep_for_like_query(keyword)}%")
    sql = (
        f"SELECT {rows.select(db, _RESOURCE).columns} FROM {quote(Resource._meta.db_table)} x"
        f" JOIN {quote(ResourceType._meta.db_table)} y ON y.id = x.resource_type_id"
        f" WHERE {' AND '.join(where)} ORDER BY x.{quote('name')}, x.{quote('identifier')} LIMIT 500"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    result = []
    for row in found:
        resource, kind = rows.instances(db, alias, _RESOURCE, row)
        assert isinstance(resource, Resource)  # noqa: S101 - the statement's FROM
        Resource._meta.get_field("resource_type").set_cached_value(resource, kind)
        result.append(resource)
    return result


_RESOURCE: tuple[rows.Join, ...] = ((Resource, "x"), (ResourceType, "y"))


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def portal_types_named(catalog: PortalCatalog, keyword: str) -> list[ResourceType]:
    """The catalog's reservable types whose name contains ``keyword`` (any case); no statement."""
    wanted = keyword.casefold()
    return sorted(
        (catalog.types[pk] for pk in catalog.reservable if wanted in catalog.types[pk].name.casefold()),
        key=lambda t: (t.name.lower(), t.pk),
    )
