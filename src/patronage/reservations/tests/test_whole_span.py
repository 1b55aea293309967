"""A "one of this type" hold is promised only when one concrete unit is free for its whole span.

Counting units instant by instant let a hold for 10-12 through when, of two laptops, one was booked 09-11
and the other 11-13: the desk would have had to swap laptops at 11. Every path that promises units
(booking, editing, approval, series, and the counts shown to staff) now asks whether each hold can keep
one unit throughout, specific bookings staying on their own units.
"""

from __future__ import annotations

import pytest

from patronage.core.errors import Refused
from patronage.reservations import queries
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy
from patronage.resources import services as catalog
from patronage.resources.models import Resource
from patronage.resources.tests.builders import at, make_resource
from tests.factories import SYSTEM, make_patron

from .conftest import book

pytestmark = pytest.mark.django_db


def codes(refused: pytest.ExceptionInfo[Refused]) -> list[str]:
    return [r["code"] for r in refused.value.reasons]


def one_of(lab, quantity: int = 1) -> list[dict[str, int]]:
    return [{"resource_type": lab.laptops.pk, "quantity": quantity}]


def someone(lab):
    return make_patron(lab.library)


@pytest.fixture
def split(lab):
    """LAP-1 booked 09-11 and LAP-2 booked 11-13 on the 10th: both free in turn, neither throughout 10-12."""
    book(lab, at(10, 9), at(10, 11), patron=someone(lab))
    book(lab, at(10, 11), at(10, 13), lines=[{"resource": lab.spare.pk}], patron=someone(lab))
    return lab


def test_a_hold_across_the_change_of_unit_is_refused(split) -> None:
    with pytest.raises(Refused) as refused:
        book(split, at(10, 10), at(10, 12), lines=one_of(split))
    assert codes(refused) == ["type_units_unavailable"]
    assert refused.value.reasons[0]["message"].startswith("0 of 2 Laptops unit(s) are free")
    assert queries.free_unit_count(split.center, split.laptops, at(10, 10), at(10, 12)) == 0
    assert queries.free_resources(split.center, split.laptops, at(10, 10), at(10, 12)) == []
    assert queries.free_counts_by_type(split.center, at(10, 10), at(10, 12)) == {split.laptops.pk: 0}


def test_back_to_back_with_either_unit_is_still_allowed(split) -> None:
    assert queries.free_unit_count(split.center, split.laptops, at(10, 11), at(10, 13)) == 1
    assert queries.free_resources(split.center, split.laptops, at(10, 11), at(10, 13)) == [split.laptop]
    book(split, at(10, 11), at(10, 13), lines=one_of(split))  # LAP-1 from its end at 11
    book(split, at(10, 8), at(10, 11), lines=one_of(split), patron=someone(split))  # LAP-2 until its start
    assert Occupancy.objects.filter(resource=None, active=True).count() == 2


def test_a_quantity_needs_that_many_units_free_throughout(split) -> None:
    third = make_resource(split.library, split.laptops, split.center, identifier="LAP-3")
    assert queries.free_unit_count(split.center, split.laptops, at(10, 10), at(10, 12)) == 1
    assert queries.free_resources(split.center, split.laptops, at(10, 10), at(10, 12)) == [third]
    with pytest.raises(Refused) as refused:
        book(split, at(10, 10), at(10, 12), lines=one_of(split, 2))
    assert codes(refused) == ["type_units_unavailable"]
    assert refused.value.reasons[0]["free"] == "1"
    assert refused.value.reasons[0]["asked"] == "2"
    book(split, at(10, 10), at(10, 12), lines=one_of(split, 1))
    # The hold now needs LAP-3 throughout, so LAP-3 cannot be booked on its own within its span.
    with pytest.raises(Refused) as refused:
        book(split, at(10, 11, 30), at(10, 14), lines=[{"resource": third.pk}], patron=someone(split))
    assert codes(refused) == ["type_units_unavailable"]


def test_buffers_widen_the_span_a_unit_must_be_free(lab) -> None:
    catalog.save_resource_type(
        actor=SYSTEM, library=lab.library, resource_type=lab.laptops, data={"buffer_after_minutes": 30}
    )
    for fresh in (lab.laptops, lab.laptop, lab.spare):
        fresh.refresh_from_db()
    book(lab, at(10, 9), at(10, 10, 30), patron=someone(lab))  # LAP-1 blocked 09:00-11:00
    book(lab, at(10, 11, 30), at(10, 13), lines=[{"resource": lab.spare.pk}], patron=someone(lab))  # LAP-2 from 11:30
    # 10:30-11:30 blocks 10:30-12:00: neither laptop is free throughout, though at most one is busy at a time.
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 10, 30), at(10, 11, 30), lines=one_of(lab))
    assert codes(refused) == ["type_units_unavailable"]
    # From 11:00 LAP-1 is free (its buffer ends then) until the end of this one's own buffer.
    assert queries.free_unit_count(lab.center, lab.laptops, at(10, 11), at(10, 11, 30)) == 1
    book(lab, at(10, 11), at(10, 11, 30), lines=one_of(lab))


def test_a_specific_booking_may_not_take_the_only_unit_a_hold_can_keep(lab) -> None:
    book(lab, at(10, 9), at(10, 11), patron=someone(lab))  # LAP-1
    book(lab, at(10, 10), at(10, 12), lines=one_of(lab))  # must keep LAP-2
    spare = Resource.objects.select_related("center__library", "resource_type").get(pk=lab.spare.pk)
    assert [r.code for r in queries.why_not(spare, at(10, 11, 30), at(10, 13))] == ["type_units_unavailable"]
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 11, 30), at(10, 13), lines=[{"resource": lab.spare.pk}], patron=someone(lab))
    assert codes(refused) == ["type_units_unavailable"]
    # LAP-1 is free again from 11; the hold keeps LAP-2, so LAP-1 can be booked from then.
    assert queries.why_not(lab.laptop, at(10, 11), at(10, 13)) == []
    book(lab, at(10, 12), at(10, 13), lines=[{"resource": lab.spare.pk}], patron=someone(lab))


def test_editing_into_the_change_of_unit_is_refused(split) -> None:
    reservation = book(split, at(10, 14), at(10, 16), lines=one_of(split))
    reservation.state = "pending_approval"
    reservation.save(update_fields=["state"])
    with pytest.raises(Refused) as refused:
        reservations.edit_reservation(actor=SYSTEM, reservation=reservation, starts_at=at(10, 10), ends_at=at(10, 12))
    assert codes(refused) == ["type_units_unavailable"]
    reservations.edit_reservation(actor=SYSTEM, reservation=reservation, starts_at=at(10, 13), ends_at=at(10, 15))


def test_approval_checks_the_whole_span_again(lab) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"approval_required": True})
    book(lab, at(10, 9), at(10, 11), patron=someone(lab))  # LAP-1
    pending = book(lab, at(10, 10), at(10, 12), lines=one_of(lab), channel="portal")
    assert pending.state == "pending_approval"
    # A row written past these services meanwhile (as rows made before this rule were): LAP-2 from 11.
    Occupancy.objects.filter(reservation=pending).update(active=False)
    book(lab, at(10, 11), at(10, 13), lines=[{"resource": lab.spare.pk}], patron=someone(lab))
    Occupancy.objects.filter(reservation=pending).update(active=True)
    with pytest.raises(Refused) as refused:
        reservations.approve_reservation(actor=SYSTEM, reservation=pending)
    assert codes(refused) == ["type_units_unavailable"]


def test_series_occurrences_across_a_change_of_unit_are_reported(split) -> None:
    made = reservations.create_series(
        actor=SYSTEM, patron=split.patron, center=split.center, starts_at=at(10, 10), ends_at=at(10, 12),
        repeat={"frequency": "weekly", "count": 3}, lines=one_of(split),
    )  # fmt: skip
    assert [r.starts_at for r in made.booked] == [at(17, 10), at(24, 10)]
    [conflict] = made.conflicts
    assert conflict.starts_at == at(10, 10)
    assert [r["code"] for r in conflict.reasons] == ["type_units_unavailable"]


def test_a_series_of_holds_never_needs_a_swap_with_itself(lab) -> None:
    # Daily 10-12 holds of two units, LAP-1 booked 11-13 on the 11th: the 11th has one unit throughout.
    book(lab, at(11, 11), at(11, 13), patron=someone(lab))
    made = reservations.create_series(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at=at(10, 10), ends_at=at(10, 12),
        repeat={"frequency": "daily", "count": 3}, lines=one_of(lab, 2),
    )  # fmt: skip
    assert [r.starts_at for r in made.booked] == [at(10, 10), at(12, 10)]
    assert [c.starts_at for c in made.conflicts] == [at(11, 10)]


def test_a_series_weighs_a_chain_of_holds_reaching_days_past_the_occurrence(lab) -> None:
    # LAP-2 is booked 09-11 on the 20th, LAP-1 at noon on the 25th. Hold A (20th 11:00 to 25th 00:00) and
    # hold B (24th to 26th) overlap, so B, kept off LAP-1 by the 25th, takes LAP-2 and A takes LAP-1: a
    # new hold 10-12 on the 20th, overlapping A, has no unit. Only the booking five days later says so,
    # past anything near the occurrence itself; the week after is free.
    book(lab, at(20, 9), at(20, 11), lines=[{"resource": lab.spare.pk}], patron=someone(lab))
    book(lab, at(25, 12), at(25, 13), patron=someone(lab))
    book(lab, at(20, 11), at(25, 0), lines=one_of(lab), patron=someone(lab))
    book(lab, at(24, 0), at(26, 0), lines=one_of(lab), patron=someone(lab))
    with pytest.raises(Refused) as refused:
        book(lab, at(20, 10), at(20, 12), lines=one_of(lab))
    assert codes(refused) == ["type_units_unavailable"]
    made = reservations.create_series(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at=at(20, 10), ends_at=at(20, 12),
        repeat={"frequency": "weekly", "count": 2}, lines=one_of(lab),
    )  # fmt: skip
    assert [c.starts_at for c in made.conflicts] == [at(20, 10)]
    assert [r["code"] for r in made.conflicts[0].reasons] == ["type_units_unavailable"]
    assert [r.starts_at for r in made.booked] == [at(27, 10)]
