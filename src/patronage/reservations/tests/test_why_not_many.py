"""``why_not_many``: for every resource, exactly what ``why_not`` says of it alone, at a fixed cost."""

from __future__ import annotations

from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patronage.reservations import queries
from patronage.reservations import services as reservations
from patronage.resources import services as catalog
from patronage.resources.models import Resource
from patronage.resources.tests.builders import at, make_center, make_resource, make_type
from tests.factories import SYSTEM, make_patron

from .conftest import book

pytestmark = pytest.mark.django_db


def loaded(*resources: Resource) -> list[Resource]:
    """The resources as the faces hand them over: type, center and library read with them."""
    found = Resource.objects.select_related("center__library", "resource_type").in_bulk([r.pk for r in resources])
    return [found[r.pk] for r in resources]


@pytest.fixture
def varied(lab: SimpleNamespace) -> SimpleNamespace:
    """Resources that are booked, in a buffer, out of service, hidden, need an authorization, promised to a
    type hold, kits with a busy or a free part, free, and one at a second center; the center opens 8-18."""
    lib, center = lab.library, lab.center
    catalog.save_resource_type(actor=SYSTEM, library=lib, resource_type=lab.laptops, data={"buffer_after_minutes": 30})
    booked, buffered = lab.laptop, lab.spare
    out = make_resource(lib, lab.laptops, center, identifier="LAP-3")
    free = make_resource(lib, lab.laptops, center, identifier="LAP-4")
    cameras = make_type(lib, "Cameras", centers=[center], requires_authorization=True)
    camera = make_resource(lib, cameras, center, identifier="CAM-1")
    hidden_type = make_type(lib, "Staff only", centers=[center], visible_in_portal=False)
    hidden = make_resource(lib, hidden_type, center, identifier="STAFF-1")
    tripods = make_type(lib, "Tripods", centers=[center])
    tripod = make_resource(lib, tripods, center, identifier="TRI-1")
    make_resource(lib, tripods, center, identifier="TRI-2")
    kits = make_type(lib, "Podcast kits", centers=[center], buffer_before_minutes=15)
    parts = make_type(lib, "Kit parts", centers=[center], visible_in_portal=False, buffer_after_minutes=45)
    busy_kit = make_resource(lib, kits, center, identifier="POD-1")
    busy_part = make_resource(lib, parts, center, identifier="POD-1-1", contained_in=busy_kit.pk)
    make_resource(lib, parts, center, identifier="POD-1-2", contained_in=busy_kit.pk)
    free_kit = make_resource(lib, kits, center, identifier="POD-2")
    inner = make_resource(lib, parts, center, identifier="POD-2-1", contained_in=free_kit.pk)
    make_resource(lib, parts, center, identifier="POD-2-1-1", contained_in=inner.pk)
    annex = make_center(lib, "annex")
    catalog.save_resource_type(
        actor=SYSTEM, library=lib, resource_type=lab.laptops, data={"centers": [center.pk, annex.pk]}
    )
    far = make_resource(lib, lab.laptops, annex, identifier="LAP-A1")

    book(lab, at(10, 10), at(10, 12))  # the first laptop
    book(lab, at(10, 9), at(10, 10, 45), [{"resource": buffered.pk}])  # its buffer runs to 11:15
    book(lab, at(10, 10), at(10, 12), [{"resource_type": tripods.pk, "quantity": 2}])
    book(lab, at(10, 9), at(10, 10, 30), [{"resource": busy_part.pk}])  # its part's buffer: to 11:15
    book(lab, at(10, 11), at(10, 12), [{"resource": far.pk}], center=annex)
    catalog.take_out_of_service(actor=SYSTEM, resource=out)
    reservations.save_center_policy(actor=SYSTEM, center=center, data={"open_hours": {"mon": [["08:00", "18:00"]]}})
    return SimpleNamespace(
        resources=loaded(booked, buffered, out, free, camera, hidden, tripod, busy_kit, free_kit, far),
        stranger=make_patron(lib),
        patron=lab.patron,
    )


SPANS = [
    (at(10, 11), at(10, 13)),  # inside the hours, across the bookings
    (at(10, 11, 20), at(10, 13)),  # only buffers still clash
    (at(10, 7), at(10, 9)),  # the pickup is before opening
    (at(10, 12, 30), at(10, 19)),  # the return is after closing
    (at(11, 10), at(11, 12)),  # a quiet day
]


@pytest.mark.parametrize("span", SPANS)
@pytest.mark.parametrize("who", ["none", "patron", "stranger"])
@pytest.mark.parametrize("portal", [False, True])
def test_many_says_what_one_says_for_each(varied: SimpleNamespace, span, who: str, portal: bool) -> None:
    patron = None if who == "none" else getattr(varied, who)
    many = queries.why_not_many(varied.resources, *span, patron=patron, portal=portal)
    one = {r.pk: queries.why_not(r, *span, patron=patron, portal=portal) for r in varied.resources}
    assert many == one


def test_the_varied_set_gives_every_reason(varied: SimpleNamespace) -> None:
    """The comparison above weighs every code, not only empty lists."""
    seen: set[str] = set()
    for span in SPANS:
        found = queries.why_not_many(varied.resources, *span, patron=varied.stranger, portal=True)
        seen |= {r.code for reasons in found.values() for r in reasons}
    assert seen == {
        "resource_booked", "resource_buffer", "resource_out_of_service", "type_units_unavailable",
        "not_authorized_for_resource_type", "resource_hidden", "outside_open_hours",
    }  # fmt: skip
    found = queries.why_not_many(varied.resources, at(10, 11), at(10, 13), patron=varied.patron, portal=False)
    codes = {r.identifier: [reason.code for reason in found[r.pk]] for r in varied.resources}
    assert codes == {
        "LAP-1": ["resource_booked"], "LAP-2": ["resource_buffer"], "LAP-3": ["resource_out_of_service"],
        "LAP-4": [], "CAM-1": ["not_authorized_for_resource_type"], "STAFF-1": [],
        "TRI-1": ["type_units_unavailable"], "POD-1": ["resource_buffer"], "POD-2": [], "LAP-A1": ["resource_booked"],
    }  # fmt: skip


def test_the_cost_does_not_grow_with_the_resources(varied: SimpleNamespace) -> None:
    def statements(resources: list[Resource]) -> int:
        with CaptureQueriesContext(connection) as done:
            queries.why_not_many(resources, at(10, 11), at(10, 13), patron=varied.stranger, portal=True)
        return len(done.captured_queries)

    # The same shape (a booked laptop, so the clashes are read; a free one, so the units are; a type hold
    # that widens the read; a kit two levels deep), with four resources and with nine: the same statements.
    one_center = [r for r in varied.resources if r.identifier != "LAP-A1"]
    few = [r for r in one_center if r.identifier in {"LAP-1", "LAP-4", "TRI-1", "POD-2"}]
    assert statements(one_center) == statements(few) <= 10


def test_a_policy_handed_over_is_not_read_again(varied: SimpleNamespace) -> None:
    """The portal hands over the center's policy it has read for the page: the same answers, one read fewer."""
    one_center = [r for r in varied.resources if r.identifier != "LAP-A1"]
    center = one_center[0].center
    span = (at(10, 11), at(10, 13))
    policy = queries.policy_for(center)
    with CaptureQueriesContext(connection) as alone:
        found = queries.why_not_many(one_center, *span, patron=varied.stranger, portal=True)
    with CaptureQueriesContext(connection) as given:
        handed = queries.why_not_many(
            one_center, *span, patron=varied.stranger, portal=True, policies={center.pk: policy}
        )
    assert handed == found
    assert len(given.captured_queries) == len(alone.captured_queries) - 1


@pytest.mark.parametrize("span", SPANS)
def test_what_the_portal_page_read_is_not_read_again(varied: SimpleNamespace, span) -> None:
    """The item list hands over its catalog's type tree and authorizations and the type's availability: the
    same answers as reading them again, with fewer statements."""
    from patronage.resources import queries as resource_queries

    laptops = [r for r in varied.resources if r.identifier.startswith("LAP-") and r.identifier != "LAP-A1"]
    center, kind, patron = laptops[0].center, laptops[0].resource_type, varied.stranger
    day = span[0].astimezone(ZoneInfo(center.library.time_zone)).date()
    shown = resource_queries.portal_catalog(center.library_id, center.pk, patron.pk, day)
    availability = queries.type_availability(center, kind, *span)
    with CaptureQueriesContext(connection) as alone:
        found = queries.why_not_many(laptops, *span, patron=patron, portal=True)
    with CaptureQueriesContext(connection) as given:
        handed = queries.why_not_many(
            laptops, *span, patron=patron, portal=True, type_trees={center.library_id: shown.nodes},
            authorizations={(patron.pk, shown.on): shown.authorized}, read=[availability],
        )  # fmt: skip
    assert handed == found
    assert len(given.captured_queries) <= len(alone.captured_queries) - 3
