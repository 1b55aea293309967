from __future__ import annotations

import datetime as dt

from patronage.resources.rules import (
    TypeNode,
    in_service_until,
    is_authorized,
    kit_loop,
    lineage,
    makes_loop,
    requires_authorization,
    visible_in_portal,
)

# 1 Cameras (needs authorization) > 2 DSLR > 3 Pro DSLR;  4 Rooms (hidden) > 5 Studio
NODES = {
    1: TypeNode(1, None, True, True),
    2: TypeNode(2, 1, False, True),
    3: TypeNode(3, 2, False, True),
    4: TypeNode(4, None, False, False),
    5: TypeNode(5, 4, False, True),
}


def test_lineage_runs_from_the_type_up_to_the_top() -> None:
    assert lineage(3, NODES) == [3, 2, 1]
    assert lineage(1, NODES) == [1]


def test_authorization_requirements_and_hiding_hold_for_subtypes() -> None:
    assert requires_authorization(3, NODES)
    assert not requires_authorization(5, NODES)
    assert not visible_in_portal(5, NODES)
    assert visible_in_portal(3, NODES)


def test_an_authorization_for_a_type_covers_its_subtypes_but_not_the_other_way() -> None:
    assert is_authorized(3, NODES, {1})
    assert is_authorized(3, NODES, {2})
    assert not is_authorized(1, NODES, {2})
    assert is_authorized(5, NODES, set())  # needs none


def test_a_type_cannot_move_under_itself_or_its_subtypes() -> None:
    assert makes_loop(1, 3, NODES)
    assert makes_loop(2, 2, NODES)
    assert not makes_loop(3, 4, NODES)
    assert not makes_loop(1, None, NODES)


def test_a_resource_cannot_become_part_of_its_own_parts() -> None:
    containers = {10: None, 11: 10, 12: 11}
    assert kit_loop(10, 12, containers)
    assert kit_loop(10, 10, containers)
    assert not kit_loop(12, 10, containers)


def test_out_of_service_from_the_end_of_a_span_on_still_serves_the_span() -> None:
    end = dt.datetime(2027, 1, 1, 12, tzinfo=dt.UTC)
    assert in_service_until(None, end)
    assert in_service_until(end, end)
    assert not in_service_until(end - dt.timedelta(seconds=1), end)
