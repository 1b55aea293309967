"""Pure rules of the catalog: the type tree and service status. No Django, no clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TypeNode:
    """One resource type as the tree rules need it."""

    id: int
    parent_id: int | None
    requires_authorization: bool
    visible_in_portal: bool


def lineage(type_id: int, nodes: Mapping[int, TypeNode]) -> list[int]:
    """The type and every type above it, nearest first. Stops at a loop (which saving refuses anyway)."""
    found: list[int] = []
    current: int | None = type_id
    while current is not None and current not in found and current in nodes:
        found.append(current)
        current = nodes[current].parent_id
    return found


def requires_authorization(type_id: int, nodes: Mapping[int, TypeNode]) -> bool:
    """A type needs an authorization when it or any type above it says so."""
    return any(nodes[t].requires_authorization for t in lineage(type_id, nodes))


def visible_in_portal(type_id: int, nodes: Mapping[int, TypeNode]) -> bool:
    """Hiding a type hides its subtypes too."""
    return all(nodes[t].visible_in_portal for t in lineage(type_id, nodes))


def is_authorized(type_id: int, nodes: Mapping[int, TypeNode], authorized: Collection[int]) -> bool:
    """An authorization for a type covers its subtypes ("Cameras" covers "DSLR cameras")."""
    if not requires_authorization(type_id, nodes):
        return True
    return any(t in authorized for t in lineage(type_id, nodes))


def makes_loop(type_id: int, new_parent_id: int | None, nodes: Mapping[int, TypeNode]) -> bool:
    """Whether putting ``type_id`` under ``new_parent_id`` would make the type its own ancestor."""
    return new_parent_id is not None and type_id in lineage(new_parent_id, nodes)


def kit_loop(resource_id: int, new_container_id: int | None, containers: Mapping[int, int | None]) -> bool:
    """Whether putting a resource into ``new_container_id`` would make it part of itself."""
    seen: set[int] = set()
    current = new_container_id
    while current is not None and current not in seen:
        if current == resource_id:
            return True
        seen.add(current)
        current = containers.get(current)
    return False


def authorization_valid_on(expires_on: dt.date | None, on: dt.date) -> bool:
    """An authorization holds on ``on`` when it has no end or ends that day or later (its ``expires_on`` is the
    last day it holds). ``queries`` states the same rule in SQL for its reads."""
    return expires_on is None or expires_on >= on


def in_service_until(out_of_service_from: dt.datetime | None, until: dt.datetime) -> bool:
    """In service for a span ending at ``until``: never taken out, or taken out only from ``until`` on."""
    return out_of_service_from is None or out_of_service_from >= until
