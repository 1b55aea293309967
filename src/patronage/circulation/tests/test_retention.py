"""Lending history retention: old finished history loses its patron unless the patron chose to keep it."""

from __future__ import annotations

import datetime as dt

import pytest

from patronage.circulation import retention
from patronage.circulation import services as desk
from patronage.circulation.models import Checkout, CheckoutItem, JobRun, OverdueInvoice
from patronage.core import clock
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.fines.models import Fee
from patronage.libraries import services as library_services
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron
from patronage.privacy.export import patron_data
from patronage.privacy.services import delete_patron
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy, Reservation, ReservationEvent, ReservationLine, ReservationSeries
from patronage.resources.models import Resource
from patronage.resources.tests.builders import at, make_center, make_resource, make_type
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library, make_patron

from .conftest import book

pytestmark = pytest.mark.django_db

WORKERS = 4
LATER = at(10, 12) + dt.timedelta(days=400)  # well past a 365-day period after the May 2027 bookings


def policy(lab, **data) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=lab.center, data=data)


def returned(lab, starts_at, ends_at, *, patron=None, back_at=None, **kwargs) -> Checkout:
    """A reservation picked up at its start and returned (at its end unless ``back_at``)."""
    made = book(lab, starts_at, ends_at, patron=patron, **kwargs)
    with clock.frozen(starts_at):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
    with clock.frozen(back_at or ends_at):
        desk.check_in(actor=SYSTEM, checkout=checkout, condition_notes={"LAP-1": "Scratched lid"})
    return Checkout.objects.get(pk=checkout.pk)


def renew(patron: Patron) -> None:
    """Keep the patron's membership valid beyond ``LATER``, so they may still reserve then."""
    patron_services.update_patron(actor=SYSTEM, patron=patron, data={"expires_on": "2030-12-31"})


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def test_old_history_loses_the_patron_and_what_names_them_but_keeps_what_statistics_need(lab) -> None:
    policy(lab, delivery_locations=["Room 101"])
    checkout = returned(
        lab, at(10, 10), at(10, 12), title="Grace's thesis defence", note="Call Grace on 555-0100",
        pickup_option="delivery", delivery_location="Room 101", channel="portal",
    )  # fmt: skip
    made = checkout.reservation
    ReservationEvent.objects.filter(reservation=made).update(comment="Grace came with her sister")
    with clock.frozen(LATER):
        assert desk.run_job("anonymise_history") == [made.pk]

    kept = fresh(made)
    assert (kept.patron_id, kept.title, kept.note_to_staff, kept.delivery_location) == (None, "", "", "")
    assert kept.operator_label == ""  # made through the portal: the label was the patron's own
    assert (kept.center_id, kept.state, kept.starts_at, kept.ends_at) == (
        lab.center.pk,
        "completed",
        at(10, 10),
        at(10, 12),
    )
    assert (kept.channel, kept.pickup_option) == ("portal", "delivery")
    assert list(ReservationLine.objects.filter(reservation=made).values_list("resource_id", flat=True)) == [
        lab.laptop.pk
    ]
    assert Occupancy.objects.filter(reservation=made).count() == 1
    events = ReservationEvent.objects.filter(reservation=made)
    assert [e.to_state for e in events] == ["reserved", "checked_out", "completed"]
    assert {e.comment for e in events} == {""}
    checkout = fresh(checkout)
    assert (checkout.patron_id, checkout.center_id, checkout.state) == (None, lab.center.pk, "completed")
    assert (checkout.checked_out_at, checkout.completed_at) == (at(10, 10), at(10, 12))
    assert CheckoutItem.objects.get(checkout=checkout).resource_id == lab.laptop.pk
    # The resource's own condition notes are about the resource, not the person: they stay.
    assert "Scratched lid" in Resource.objects.get(pk=lab.laptop.pk).condition_notes
    assert Patron.objects.filter(pk=lab.patron.pk).exists()  # the patron's account is untouched


def test_recent_history_open_reservations_and_kept_history_are_untouched(lab) -> None:
    old = returned(lab, at(10, 10), at(10, 12)).reservation
    keeper = make_patron(lab.library)
    patron_services.update_patron(actor=SYSTEM, patron=keeper, data={"keep_lending_history": True})
    kept = returned(lab, at(11, 10), at(11, 12), patron=keeper).reservation
    renew(lab.patron)
    with clock.frozen(LATER - dt.timedelta(days=30)):
        recent = returned(
            lab, LATER - dt.timedelta(days=20), LATER - dt.timedelta(days=20, hours=-2), title="Recent"
        ).reservation
        still_open = book(lab, LATER + dt.timedelta(days=1), LATER + dt.timedelta(days=1, hours=2), title="Open")
    with clock.frozen(LATER):
        assert desk.run_job("anonymise_history") == [old.pk]
    assert fresh(old).patron_id is None
    assert (fresh(kept).patron_id, fresh(kept).title) == (keeper.pk, "")
    assert Checkout.objects.get(reservation=kept).patron_id == keeper.pk
    assert (fresh(recent).patron_id, fresh(recent).title) == (lab.patron.pk, "Recent")
    assert (fresh(still_open).patron_id, fresh(still_open).state) == (lab.patron.pk, "reserved")


def test_every_final_state_is_anonymised_and_an_open_one_never_however_old(lab) -> None:
    cancelled = book(lab, at(10, 10), at(10, 12), title="Cancelled")
    reservations.cancel_reservation(actor=SYSTEM, reservation=cancelled, comment="Ill")
    policy(lab, approval_required=True)
    rejected = book(lab, at(11, 10), at(11, 12), channel="portal")
    reservations.reject_reservation(actor=SYSTEM, reservation=rejected, comment="Not for this")
    policy(lab, approval_required=False, no_show_minutes=30)
    no_show = book(lab, at(12, 10), at(12, 12))
    with clock.frozen(at(12, 11)):
        assert desk.run_job("release_no_shows") == [no_show.pk]
    out = book(lab, at(13, 10), at(13, 12))
    with clock.frozen(at(13, 10)):
        desk.check_out(actor=SYSTEM, reservation=out, scanned=["LAP-1"])
    with clock.frozen(LATER):
        done = desk.run_job("anonymise_history")
    assert sorted(done) == sorted([cancelled.pk, rejected.pk, no_show.pk])
    assert Reservation.objects.get(pk=out.pk).patron_id == lab.patron.pk
    assert Checkout.objects.get(reservation=out).patron_id == lab.patron.pk  # still out, a year late


def test_a_library_without_a_period_keeps_everything(lab) -> None:
    library_services.save_library(
        actor=SYSTEM, library=lab.library,
        data={"name": lab.library.name, "currency": "USD", "time_zone": lab.library.time_zone, "country": "US",
              "lending_history_retention_days": ""},
    )  # fmt: skip
    made = returned(lab, at(10, 10), at(10, 12)).reservation
    with clock.frozen(LATER + dt.timedelta(days=3000)):
        assert desk.run_job("anonymise_history") == []
    assert fresh(made).patron_id == lab.patron.pk


def test_the_period_counts_from_the_last_thing_that_happened(lab) -> None:
    """A checkout returned long after its end is kept for the full period after the return."""
    checkout = returned(lab, at(10, 10), at(10, 12), back_at=at(10, 12) + dt.timedelta(days=60))
    with clock.frozen(at(10, 12) + dt.timedelta(days=366)):
        assert desk.run_job("anonymise_history") == []
    with clock.frozen(at(10, 12) + dt.timedelta(days=60 + 366)):
        assert desk.run_job("anonymise_history") == [checkout.reservation_id]


def test_a_second_run_changes_nothing_and_each_run_is_recorded_once_with_counts(lab) -> None:
    made = returned(lab, at(10, 10), at(10, 12)).reservation
    with clock.frozen(LATER):
        assert desk.run_job("anonymise_history") == [made.pk]
        assert desk.run_job("anonymise_history") == []
    [event] = AuditEvent.objects.filter(action="lending_history.anonymised")
    assert (event.library_id, event.patron_id, event.channel) == (lab.library.pk, None, "system")
    assert event.detail["counts"] == {"reservations": 1, "checkouts": 1, "events": 0, "series_removed": 0}
    run = JobRun.objects.get(name="anonymise_history")
    assert (run.runs, run.last_outcome["count"]) == (2, 0)


def test_large_histories_are_done_in_batches(lab, monkeypatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)
    made = [book(lab, at(10 + d, 10), at(10 + d, 12)) for d in range(5)]
    for r in made:
        reservations.cancel_reservation(actor=SYSTEM, reservation=r)
    with clock.frozen(LATER):
        counts = retention.anonymise_library(lab.library)
    assert (counts.reservations, sorted(counts.ids)) == (5, sorted(r.pk for r in made))
    assert not Reservation.objects.filter(patron__isnull=False).exists()


def test_the_overdue_invoice_stays_but_no_longer_points_into_the_patrons_ledger(lab) -> None:
    policy(lab, overdue_fee="5.00")
    checkout = returned(lab, at(10, 10), at(10, 12), back_at=at(10, 14))
    with clock.frozen(at(10, 15)):
        [fee_id] = desk.run_job("invoice_overdue")
    with clock.frozen(LATER):
        desk.run_job("anonymise_history")
        assert desk.run_job("invoice_overdue") == []  # never invoiced twice
    invoice = OverdueInvoice.objects.get(checkout=checkout)
    assert invoice.fee_id is None
    assert Fee.objects.get(pk=fee_id).patron_id == lab.patron.pk  # the ledger itself is the patron's


def test_a_series_goes_once_every_occurrence_is_anonymised(lab) -> None:
    reservations.create_series(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at=at(10, 10), ends_at=at(10, 12),
        repeat={"frequency": "daily", "count": "2"}, lines=[{"resource": lab.laptop.pk}],
    )  # fmt: skip
    assert ReservationSeries.objects.filter(patron=lab.patron).count() == 1
    occurrences = list(Reservation.objects.filter(series__isnull=False).order_by("starts_at"))
    assert len(occurrences) == 2
    for r in occurrences:
        reservations.cancel_reservation(actor=SYSTEM, reservation=r)
    with clock.frozen(LATER):
        desk.run_job("anonymise_history")
    assert not ReservationSeries.objects.filter(patron=lab.patron).exists()
    assert Reservation.objects.filter(pk__in=[r.pk for r in occurrences], series__isnull=True).count() == 2


def test_the_export_no_longer_holds_anonymised_rows(lab) -> None:
    old = returned(lab, at(10, 10), at(10, 12))
    renew(lab.patron)
    with clock.frozen(LATER - dt.timedelta(days=30)):
        recent = returned(lab, LATER - dt.timedelta(days=20), LATER - dt.timedelta(days=20, hours=-2))
    before = patron_data(lab.patron)
    assert sorted(r["id"] for r in before["checkouts"]) == sorted([old.pk, recent.pk])
    with clock.frozen(LATER):
        desk.run_job("anonymise_history")
    data = patron_data(lab.patron)
    assert [r["id"] for r in data["reservations"]] == [recent.reservation_id]
    assert [r["id"] for r in data["checkouts"]] == [recent.pk]
    assert len(data["checkout_items"]) == len(data["reservation_lines"]) == 1
    assert data["patron"]["keep_lending_history"] is False


def test_deleting_a_patron_keeps_their_finished_history_anonymised(lab) -> None:
    policy(lab, overdue_fee="5.00")
    checkout = returned(lab, at(10, 10), at(10, 12), back_at=at(10, 14), title="Grace's class")
    with clock.frozen(at(10, 15)):
        desk.run_job("invoice_overdue")
    fines.take_payment(actor=SYSTEM, patron=lab.patron, amount="5.00", method="cash", idempotency_key="r1")
    reservations.create_series(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at=at(17, 10), ends_at=at(17, 12),
        repeat={"frequency": "daily", "count": "2"}, lines=[{"resource": lab.laptop.pk}],
    )  # fmt: skip
    for r in Reservation.objects.filter(series__isnull=False):
        reservations.cancel_reservation(actor=SYSTEM, reservation=r)
    fee_id = OverdueInvoice.objects.get().fee_id
    delete_patron(actor=SYSTEM, patron=lab.patron)
    assert not Patron.objects.filter(pk=lab.patron.pk).exists()
    made = fresh(checkout.reservation)
    assert (made.patron_id, made.title, made.state) == (None, "", "completed")
    assert fresh(checkout).patron_id is None
    assert Reservation.objects.filter(patron__isnull=True).count() == 3
    assert not ReservationSeries.objects.exists()
    assert fee_id is not None
    assert not Fee.objects.filter(pk=fee_id).exists()
    assert OverdueInvoice.objects.get().fee_id is None


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_several_workers_at_once_anonymise_each_row_once(monkeypatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    with clock.frozen(at(3, 12)):
        library = make_library()
        center = make_center(library)
        laptops = make_type(library, "Laptops", centers=[center])
        make_resource(library, laptops, center, identifier="LAP-1")
        made = []
        for day in range(10, 20):
            r = reservations.create_reservation(
                actor=SYSTEM, patron=make_patron(library), center=center, starts_at=at(day, 10), ends_at=at(day, 12),
                lines=[{"resource_type": laptops.pk}],
            )  # fmt: skip
            reservations.cancel_reservation(actor=SYSTEM, reservation=r)
            made.append(r.pk)

    def work(_index: int) -> list[int]:
        return desk.run_job("anonymise_history")

    with clock.frozen(LATER):
        runs, errors = split(at_once(work, WORKERS))
    assert errors == [], errors
    done = [pk for run in runs for pk in run]
    assert sorted(done) == sorted(made)  # every row once, by one worker or another
    assert not Reservation.objects.filter(patron__isnull=False).exists()
    events = AuditEvent.objects.filter(action="lending_history.anonymised")
    assert sum(e.detail["counts"]["reservations"] for e in events) == len(made)
    assert JobRun.objects.get(name="anonymise_history").runs == WORKERS
