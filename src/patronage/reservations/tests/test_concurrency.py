"""Many requests at once for the last free resource, or the last unit of a type: exactly one wins.

The threads really run in parallel, each with its own database connection, against committed data
(``transaction=True``), on whichever database DATABASE_URL names (SQLite or PostgreSQL).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from patronage.core import clock
from patronage.core.errors import Refused
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy, Reservation
from patronage.resources.tests.builders import NOW, at, make_center, make_resource, make_type
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library, make_patron

WORKERS = 8


def race(lines_for) -> tuple[list[Reservation], list[Exception]]:
    """Set up a center whose laptops are all taken but one, then let WORKERS patrons reach for it at once."""
    library = make_library()
    center = make_center(library)
    laptops = make_type(library, "Laptops", centers=[center])
    last = make_resource(library, laptops, center)
    taken = make_resource(library, laptops, center)
    reservations.create_reservation(
        actor=SYSTEM, patron=make_patron(library), center=center, starts_at=at(10, 9), ends_at=at(10, 13),
        lines=[{"resource": taken.pk}],
    )  # fmt: skip
    patrons = [make_patron(library) for _ in range(WORKERS)]

    def reserve(index: int) -> Reservation:
        # Every span overlaps every other, each by a different amount.
        start = at(10, 10) + dt.timedelta(minutes=index)
        return reservations.create_reservation(
            actor=SYSTEM, patron=patrons[index], center=center, starts_at=start,
            ends_at=start + dt.timedelta(hours=2), lines=lines_for(index, last, laptops),
        )  # fmt: skip

    return split(at_once(reserve, WORKERS))


def _specific(index, last, laptops):
    return [{"resource": last.pk}]


def _one_of_type(index, last, laptops):
    return [{"resource_type": laptops.pk}]


def _mixed(index, last, laptops):
    return _specific(index, last, laptops) if index % 2 else _one_of_type(index, last, laptops)


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lines_for", [_specific, _one_of_type, _mixed], ids=["resource", "type", "mixed"])
def test_concurrent_requests_for_the_last_unit_book_it_once(lines_for) -> None:
    with clock.frozen(NOW):
        made, refused = race(lines_for)
    assert len(made) == 1, (made, refused)
    assert len(refused) == WORKERS - 1
    assert all(isinstance(exc, Refused) for exc in refused), refused
    assert {r["code"] for exc in refused for r in exc.reasons} <= {"resource_booked", "type_units_unavailable"}  # type: ignore[attr-defined]
    assert Reservation.objects.filter(state="reserved").count() == 2
    assert Occupancy.objects.filter(active=True).count() == 2
    assert connection.vendor in {"sqlite", "postgresql"}
