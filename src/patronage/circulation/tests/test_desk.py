"""The desk on the database: check out, walk-up, check in, late marking, invoices, no-shows, standing."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from patronage.blocks import services as blocks
from patronage.circulation import services as desk
from patronage.circulation.models import Checkout, JobRun, OverdueInvoice
from patronage.core import clock
from patronage.core.errors import Conflict, FieldError, Refused
from patronage.fines import services as fines
from patronage.fines.models import Fee
from patronage.libraries.permissions import Permission
from patronage.privacy.export import patron_data
from patronage.privacy.services import DeletionRefused, delete_patron
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy, Reservation, ReservationEvent
from patronage.resources.models import Resource
from patronage.resources.tests.builders import at, make_resource, make_type
from patronage.standing.rules import Action
from patronage.standing.services import decide, standing
from tests.factories import SYSTEM, actor, make_patron, make_staff

from .conftest import book

pytestmark = pytest.mark.django_db


def policy(lab, **data) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=lab.center, data=data)


def state(reservation: Reservation) -> str:
    return Reservation.objects.get(pk=reservation.pk).state


def active_rows(reservation: Reservation) -> list[tuple[int | None, int]]:
    rows = Occupancy.objects.filter(reservation=reservation, active=True)
    return sorted(rows.values_list("resource_id", "quantity"), key=str)


# --- check out ----------------------------------------------------------------------------------------------


def test_a_reservation_is_checked_out_at_pickup(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    with clock.frozen(at(10, 10, 5)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
    assert (checkout.state, checkout.due_at, checkout.patron_id) == ("open", at(10, 12), lab.patron.pk)
    assert [i.resource_id for i in checkout.items.all()] == [lab.laptop.pk]
    assert state(made) == "checked_out"
    assert list(ReservationEvent.objects.filter(reservation=made).values_list("to_state", flat=True)) == [
        "reserved", "checked_out",
    ]  # fmt: skip


def test_pickup_is_refused_before_the_start_and_after_the_end(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    with clock.frozen(at(10, 9, 59)), pytest.raises(Conflict) as early:
        desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
    assert early.value.code == "pickup_too_early"
    with clock.frozen(at(10, 12)), pytest.raises(Conflict) as late:
        desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
    assert late.value.code == "reservation_ended"


def test_one_of_this_type_gets_the_scanned_resource_at_pickup(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12), [{"resource_type": lab.laptops.pk}])
    assert active_rows(made) == [(None, 1)]
    with clock.frozen(at(10, 10)):
        desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-2"])
    assert active_rows(made) == [(lab.spare.pk, 1)]
    # The concrete laptop is now taken: someone else cannot book it for the rest of the span.
    with clock.frozen(at(10, 10)), pytest.raises(Refused) as refused:
        book(lab, at(10, 11), at(10, 13), [{"resource": lab.spare.pk}], patron=make_patron(lab.library))
    assert [r["code"] for r in refused.value.reasons] == ["resource_booked"]


def test_a_reserved_resource_can_be_swapped_for_a_free_one_of_the_same_type(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    with clock.frozen(at(10, 10)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-2"])
    assert [i.resource_id for i in checkout.items.all()] == [lab.spare.pk]
    assert made.lines.get().resource_id == lab.spare.pk
    assert active_rows(made) == [(lab.spare.pk, 1)]


def test_a_substitute_promised_to_someone_else_is_refused(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    book(lab, at(10, 11), at(10, 12), [{"resource": lab.spare.pk}], patron=make_patron(lab.library))
    with clock.frozen(at(10, 10)), pytest.raises(Refused) as refused:
        desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-2"])
    assert [r["code"] for r in refused.value.reasons] == ["resource_booked"]
    assert state(made) == "reserved"


def test_scans_must_match_the_reservation(lab) -> None:
    cameras = make_type(lab.library, "Cameras", centers=[lab.center])
    make_resource(lab.library, cameras, lab.center, identifier="CAM-1")
    made = book(lab, at(10, 10), at(10, 12), [{"resource": lab.laptop.pk}, {"resource_type": lab.laptops.pk}])
    with clock.frozen(at(10, 10)):
        for scanned, words in (
            (["NOPE"], "Unknown"), (["LAP-1", "CAM-1"], "Not part"), (["LAP-1"], "Still to scan"),
            (["LAP-1", "LAP-1"], "twice"),
        ):  # fmt: skip
            with pytest.raises(FieldError) as bad:
                desk.check_out(actor=SYSTEM, reservation=made, scanned=scanned)
            assert words in bad.value.errors["scanned"][0]
        desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-2", "LAP-1"])
    assert active_rows(made) == sorted([(lab.laptop.pk, 1), (lab.spare.pk, 1)], key=str)


def test_standing_is_checked_at_pickup_and_may_be_overridden(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="Lost keys")
    with clock.frozen(at(10, 10)):
        with pytest.raises(Refused) as refused:
            desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
        assert [r["code"] for r in refused.value.reasons] == ["blocked_by_staff"]
        boss = make_staff(lab.library, [Permission.OVERRIDE_RESERVATION_RULES])
        desk.check_out(actor=actor(boss), reservation=made, scanned=["LAP-1"], override_comment="Dean's request")
    assert "Dean's request" in ReservationEvent.objects.filter(reservation=made).latest("id").comment


def test_walk_up_reserves_and_checks_out_in_one_step_or_not_at_all(lab) -> None:
    policy(lab, min_lead_minutes=60)
    with clock.frozen(at(10, 10, 7)):
        checkout = desk.walk_up(
            actor=SYSTEM, patron=lab.patron, center=lab.center, ends_at=at(10, 14), scanned=["LAP-1"]
        )
        assert (checkout.reservation.state, checkout.reservation.starts_at) == ("checked_out", at(10, 10, 7))
        with pytest.raises(Refused):
            desk.walk_up(
                actor=SYSTEM, patron=make_patron(lab.library), center=lab.center, ends_at=at(10, 12), scanned=["LAP-1"]
            )
    assert Reservation.objects.count() == 1


# --- check in -----------------------------------------------------------------------------------------------


def test_partial_check_in_frees_what_came_back_and_keeps_condition_notes(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12), [{"resource_type": lab.laptops.pk, "quantity": 2}])
    with clock.frozen(at(10, 10)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1", "LAP-2"])
    with clock.frozen(at(10, 11)):
        desk.check_in(actor=SYSTEM, checkout=checkout, scanned=["LAP-2"], condition_notes={"LAP-2": "Scratched lid"})
        assert Checkout.objects.get(pk=checkout.pk).completed_at is None
        assert state(made) == "checked_out"
        assert Resource.objects.get(pk=lab.spare.pk).condition_notes.endswith(": Scratched lid")
        book(lab, at(10, 11, 30), at(10, 12), [{"resource": lab.spare.pk}], patron=make_patron(lab.library))
    with clock.frozen(at(10, 11, 30)):
        desk.check_in(actor=SYSTEM, checkout=checkout)
        with pytest.raises(Conflict):
            desk.check_in(actor=SYSTEM, checkout=checkout)
    checkout.refresh_from_db()
    assert (checkout.state, checkout.completed_at) == ("completed", at(10, 11, 30))
    assert state(made) == "completed"
    assert active_rows(made) == []


def test_condition_notes_accumulate_as_a_dated_history(lab) -> None:
    for day in (10, 11):
        made = book(lab, at(day, 10), at(day, 12))
        with clock.frozen(at(day, 10)):
            checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
            desk.check_in(actor=SYSTEM, checkout=checkout, condition_notes={"LAP-1": f"note {day}"})
    lines = Resource.objects.get(pk=lab.laptop.pk).condition_notes.splitlines()
    assert [line.split()[0] for line in lines] == ["2027-05-10", "2027-05-11"]
    assert lines[1].endswith("note 11")


# --- jobs -----------------------------------------------------------------------------------------------------


def test_late_checkouts_are_marked_invoiced_once_and_show_in_standing(lab) -> None:
    policy(lab, overdue_fee="5.00", overdue_grace_minutes=15)
    made = book(lab, at(10, 10), at(10, 12))
    with clock.frozen(at(10, 10)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
    with clock.frozen(at(10, 12, 10)):
        assert decide(lab.patron, Action.RESERVE).codes == ["late_resources"]  # late from the minute the end passes
        assert desk.run_job("mark_late") == [checkout.pk]
        assert desk.run_job("mark_late") == []
        assert desk.run_job("invoice_overdue") == []  # still inside the grace time
    with clock.frozen(at(10, 12, 16)):
        [fee_id] = desk.run_job("invoice_overdue")
        assert desk.run_job("invoice_overdue") == []
        fee = Fee.objects.get(pk=fee_id)
        assert (fee.kind, fee.amount, fee.branch_id) == ("overdue", Decimal("5.00"), lab.center.pk)
        result = standing(lab.patron)
        assert result.codes == ["overdue_invoice", "late_resources"]
        assert result.decision(Action.CHECK_OUT).codes == ["overdue_invoice", "late_resources"]
        assert result.decision(Action.PAY).allowed
        desk.check_in(actor=SYSTEM, checkout=checkout)
        assert standing(lab.patron).codes == ["overdue_invoice"]
        fines.take_payment(actor=SYSTEM, patron=lab.patron, amount="5.00", method="cash", idempotency_key="k1")
        assert standing(lab.patron).is_clear
    assert Checkout.objects.get(pk=checkout.pk).state == "completed"
    assert OverdueInvoice.objects.count() == 1
    run = JobRun.objects.get(name="invoice_overdue")
    assert (run.runs, run.last_finished_at, run.last_outcome["count"]) == (3, at(10, 12, 16), 0)


def test_an_overdue_fee_added_by_hand_is_a_debt_not_an_overdue_invoice(lab) -> None:
    fines.add_fee(actor=SYSTEM, patron=lab.patron, amount="1.00", kind="overdue")
    assert standing(lab.patron).is_clear


def test_a_late_return_before_the_job_runs_is_still_invoiced_and_an_early_one_never(lab) -> None:
    policy(lab, overdue_fee="2.00")
    late = book(lab, at(10, 10), at(10, 12))
    on_time = book(lab, at(10, 10), at(10, 12), [{"resource": lab.spare.pk}], patron=make_patron(lab.library))
    with clock.frozen(at(10, 10)):
        late_checkout = desk.check_out(actor=SYSTEM, reservation=late, scanned=["LAP-1"])
        early_checkout = desk.check_out(actor=SYSTEM, reservation=on_time, scanned=["LAP-2"])
    with clock.frozen(at(10, 11)):
        desk.check_in(actor=SYSTEM, checkout=early_checkout)
    with clock.frozen(at(10, 13)):
        desk.check_in(actor=SYSTEM, checkout=late_checkout)
    with clock.frozen(at(11, 9)):
        assert len(desk.run_job("invoice_overdue")) == 1
    assert OverdueInvoice.objects.get().checkout_id == late_checkout.pk


def test_no_shows_are_released_once_and_cannot_be_picked_up_after(lab) -> None:
    policy(lab, no_show_minutes=30)
    made = book(lab, at(10, 10), at(10, 12))
    with clock.frozen(at(10, 10, 29)):
        assert desk.run_job("release_no_shows") == []
    with clock.frozen(at(10, 10, 30)):
        assert desk.run_job("release_no_shows") == [made.pk]
        assert desk.run_job("release_no_shows") == []
        assert state(made) == "no_show"
        assert active_rows(made) == []
        with pytest.raises(Conflict) as refused:
            desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
        assert refused.value.code == "transition_not_allowed"


def test_the_command_runs_every_job_once_and_records_it(lab) -> None:
    out = io.StringIO()
    with clock.frozen(at(10, 10)):
        call_command("run_lending_jobs", stdout=out)
    assert "mark_late: 0" in out.getvalue()
    assert set(JobRun.objects.values_list("name", flat=True)) == {
        "mark_late", "invoice_overdue", "release_no_shows", "anonymise_history",
    }  # fmt: skip


# --- privacy ---------------------------------------------------------------------------------------------------


def test_open_checkouts_refuse_deletion_and_are_exported(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    with clock.frozen(at(10, 10)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
        with pytest.raises(DeletionRefused) as refused:
            delete_patron(actor=SYSTEM, patron=lab.patron)
    assert "has_open_checkouts" in {r["code"] for r in refused.value.reasons}
    data = patron_data(lab.patron)
    assert [row["id"] for row in data["checkouts"]] == [checkout.pk]
    assert len(data["checkout_items"]) == 1


def test_the_command_can_queue_the_jobs_for_the_worker(lab) -> None:
    out = io.StringIO()
    call_command("run_lending_jobs", "--enqueue", stdout=out)
    assert out.getvalue().count("queued") == 4
    assert not JobRun.objects.exists()  # nothing ran yet: the worker will
