from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from patronage.blocks import services as blocks
from patronage.core import clock
from patronage.core.audit import Actor
from patronage.core.errors import Conflict, FieldError, PermissionDenied, Refused, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries.permissions import Permission
from patronage.privacy.services import DeletionRefused, delete_patron
from patronage.reservations import queries
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy, Reservation, ReservationEvent
from patronage.reservations.rules import State
from patronage.resources import services as catalog
from patronage.resources.tests.builders import NOW, ZONE, at, make_center, make_resource, make_type
from patronage.standing.rules import Action
from patronage.standing.services import decide
from tests.factories import SYSTEM, actor, make_patron, make_staff

from .conftest import book

pytestmark = pytest.mark.django_db

PORTAL = Actor(user=None, channel="portal")  # a patron in the portal has no staff account


def codes(refused: pytest.ExceptionInfo[Refused]) -> list[str]:
    return [r["code"] for r in refused.value.reasons]


def policy(lab, **data) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=lab.center, data=data)


# --- creating ----------------------------------------------------------------------------------------------


def test_a_reservation_is_made_recorded_and_audited(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12), title="Thesis defence", note="Needs HDMI")
    assert (made.state, made.channel, made.title, made.note_to_staff) == (
        "reserved", "staff", "Thesis defence", "Needs HDMI",
    )  # fmt: skip
    assert made.starts_at == at(10, 10)
    assert made.starts_at.utcoffset() == dt.timedelta(0)
    occupancy = Occupancy.objects.get(reservation=made)
    assert (occupancy.resource, occupancy.active) == (lab.laptop, True)
    assert (occupancy.blocked_from, occupancy.blocked_until) == (at(10, 10), at(10, 12))
    event = ReservationEvent.objects.get(reservation=made)
    assert (event.from_state, event.to_state, event.at) == ("", "reserved", NOW)
    assert AuditEvent.objects.get(action="reservation.created").detail["reservation_id"] == made.pk


def test_wall_clock_times_are_read_in_the_centers_time_zone(lab) -> None:
    made = book(lab, "2027-05-10T10:00", dt.datetime(2027, 5, 10, 12, 0))  # noqa: DTZ001 - the point of the test
    assert (made.starts_at, made.ends_at) == (at(10, 10), at(10, 12))
    with pytest.raises(ValidationFailed) as refused:
        book(lab, "2028-03-12T02:30", "2028-03-12T04:00")  # skipped by the clocks in New York
    assert "does not exist" in refused.value.errors["starts_at"][0]


def test_bad_input_is_a_field_error_naming_every_field(lab) -> None:
    with pytest.raises(ValidationFailed) as refused:
        book(lab, "tomorrow", at(10, 12), pickup_option="drone", title="x" * 201)
    assert set(refused.value.errors) == {"starts_at", "pickup_option", "title"}
    with pytest.raises(FieldError, match="at least one"):
        book(lab, at(10, 10), at(10, 12), lines=[])
    with pytest.raises(ValidationFailed) as refused:
        book(lab, at(10, 10), at(10, 12), lines=[{"resource_type": lab.laptops.pk, "quantity": 0}, {"resource": 99999}])
    assert set(refused.value.errors) == {"lines.0.quantity", "lines.1.resource"}
    assert not Reservation.objects.exists()


def test_portal_reservations_wait_for_approval_where_the_center_wants_it(lab) -> None:
    policy(lab, approval_required=True)
    assert book(lab, at(10, 10), at(10, 12), actor=PORTAL, channel="portal").state == "pending_approval"
    assert book(lab, at(11, 10), at(11, 12)).state == "reserved"  # staff reservations need no approval


# --- boundaries ---------------------------------------------------------------------------------------------


def test_back_to_back_is_allowed_and_a_minute_of_overlap_is_not(lab) -> None:
    book(lab, at(10, 10), at(10, 12))
    book(lab, at(10, 12), at(10, 14), patron=make_patron(lab.library))
    book(lab, at(10, 8), at(10, 10), patron=make_patron(lab.library))
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 13, 59), at(10, 16), patron=make_patron(lab.library))
    assert codes(refused) == ["resource_booked"]
    assert refused.value.reasons[0]["overridable"] == "false"


def test_buffers_of_the_type_are_kept_free_on_both_sides(lab) -> None:
    catalog.save_resource_type(
        actor=SYSTEM, library=lab.library, resource_type=lab.laptops,
        data={"buffer_before_minutes": 15, "buffer_after_minutes": 30},
    )  # fmt: skip
    lab.laptop.refresh_from_db()
    first = book(lab, at(10, 10), at(10, 12))
    occupancy = Occupancy.objects.get(reservation=first)
    assert (occupancy.blocked_from, occupancy.blocked_until) == (at(10, 9, 45), at(10, 12, 30))
    other = make_patron(lab.library)
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 12, 29), at(10, 14), patron=other)  # its own 15 minutes before overlap too
    assert codes(refused) == ["resource_buffer"]
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 12, 30), at(10, 14), patron=other)
    assert codes(refused) == ["resource_buffer"]
    book(lab, at(10, 12, 45), at(10, 14), patron=other)  # 30 after + 15 before: exactly enough
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 7), at(10, 9, 31), patron=other)
    assert codes(refused) == ["resource_buffer"]
    book(lab, at(10, 7), at(10, 9, 15), patron=other)


def test_lead_time_exactly_at_the_limit_is_allowed(lab) -> None:
    policy(lab, min_lead_minutes=24 * 60)
    book(lab, NOW + dt.timedelta(hours=24), NOW + dt.timedelta(hours=26))
    with pytest.raises(Refused) as refused:
        book(lab, NOW + dt.timedelta(hours=24) - dt.timedelta(minutes=1), NOW + dt.timedelta(hours=26), lines=[
            {"resource": lab.spare.pk}
        ])  # fmt: skip
    assert codes(refused) == ["inside_lead_time"]


# --- every reason at once ---------------------------------------------------------------------------------


def test_a_kit_is_booked_in_the_portal_by_its_own_visibility_not_its_parts(lab) -> None:
    kits = make_type(lab.library, "Podcast kits", centers=[lab.center])
    parts = make_type(lab.library, "Kit parts", centers=[lab.center], visible_in_portal=False)
    kit = make_resource(lab.library, kits, lab.center, identifier="POD-1")
    for n in (1, 2):
        make_resource(lab.library, parts, lab.center, identifier=f"POD-1-{n}", contained_in=kit.pk)
    made = book(lab, at(10, 10), at(10, 12), [{"resource": kit.pk}], actor=PORTAL, channel="portal")
    assert made.occupancies.filter(active=True).count() == 3  # the kit and both parts are held
    assert queries.why_not(kit, at(11, 10), at(11, 12), patron=lab.patron, portal=True) == []

    hidden_kits = make_type(lab.library, "Staff kits", centers=[lab.center], visible_in_portal=False)
    staff_kit = make_resource(lab.library, hidden_kits, lab.center, identifier="SK-1")
    make_resource(lab.library, parts, lab.center, identifier="SK-1-1", contained_in=staff_kit.pk)
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 10), at(10, 12), [{"resource": staff_kit.pk}], actor=PORTAL, channel="portal")
    assert [r["code"] for r in refused.value.reasons] == ["resource_hidden"]


def test_every_reason_is_listed_together(lab) -> None:
    other_center = make_center(lab.library, "annex")
    lab.laptops.centers.add(other_center)
    elsewhere = make_resource(lab.library, lab.laptops, other_center, identifier="ANX-1")
    hidden = make_type(lab.library, "Staff laptops", centers=[lab.center], visible_in_portal=False)
    secret = make_resource(lab.library, hidden, lab.center)
    printers = make_type(lab.library, "3D printers", centers=[lab.center], requires_authorization=True)
    printer = make_resource(lab.library, printers, lab.center)
    catalog.take_out_of_service(actor=SYSTEM, resource=lab.spare)
    book(lab, at(10, 10), at(10, 11))  # the one open reservation the policy will allow
    policy(
        lab, min_lead_minutes=48 * 60, max_duration_minutes=60, max_open_reservations=1, title_required=True,
        desk_pickup=False, signature_required=True, open_hours={"mon": [["09:00", "17:00"]]},
    )  # fmt: skip
    blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="Unreturned charger")
    with pytest.raises(Refused) as refused:
        book(
            lab, at(4, 7), at(4, 20), channel="portal", actor=PORTAL,
            lines=[{"resource": elsewhere.pk}, {"resource": lab.spare.pk}, {"resource": secret.pk},
                   {"resource": printer.pk}],
        )  # fmt: skip
    assert codes(refused) == [
        "inside_lead_time",
        "duration_over_limit",
        "outside_open_hours",  # pickup on a Tuesday
        "outside_open_hours",  # return
        "title_required",
        "pickup_option_not_offered",
        "too_many_open_reservations",
        "signature_missing",
        "resource_not_at_center",
        "resource_out_of_service",
        "resource_hidden",
        "not_authorized_for_resource_type",
        "blocked_by_staff",
    ]
    standing_reason = refused.value.reasons[-1]
    assert standing_reason["remedy"]
    assert "blocked by the library" in standing_reason["message"]  # the patron's words, for the portal
    assert Reservation.objects.count() == 1


def test_the_patrons_standing_codes_are_the_reasons(lab) -> None:
    from patronage.fines import services as fines

    fines.add_fee(actor=SYSTEM, patron=lab.patron, amount="7.50")
    assert decide(lab.patron, Action.RESERVE).codes == ["fines_over_limit"]
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 10), at(10, 12))
    assert codes(refused) == ["fines_over_limit"]
    assert "Pay 2.50" in refused.value.reasons[0]["remedy"]


def test_a_type_not_lent_at_the_center_and_a_wrong_delivery_location(lab) -> None:
    annex = make_center(lab.library, "annex")
    kind = make_type(lab.library, "Projectors", centers=[annex])
    policy(lab, delivery_locations=["Room 101"])
    with pytest.raises(Refused) as refused:
        book(
            lab, at(10, 10), at(10, 12), lines=[{"resource_type": kind.pk}], pickup_option="delivery",
            delivery_location="Room 999",
        )  # fmt: skip
    assert codes(refused) == ["delivery_location_unknown", "type_not_lent_here"]
    made = book(lab, at(10, 10), at(10, 12), pickup_option="delivery", delivery_location="Room 101")
    assert made.delivery_location == "Room 101"


# --- override ---------------------------------------------------------------------------------------------


def test_staff_with_the_permission_override_rules_with_a_recorded_comment(lab) -> None:
    policy(lab, min_lead_minutes=48 * 60, title_required=True)
    boss = actor(make_staff(lab.library, [Permission.OVERRIDE_RESERVATION_RULES]))
    clerk = actor(make_staff(lab.library, [Permission.CHECK_OUT]))
    with pytest.raises(PermissionDenied):
        book(lab, at(4, 10), at(4, 12), actor=clerk, override_comment="Dean asked")
    made = book(lab, at(4, 10), at(4, 12), actor=boss, override_comment="Dean asked")
    assert (made.overridden, made.override_comment, made.operator) == (
        ["inside_lead_time", "title_required"], "Dean asked", boss.user,
    )  # fmt: skip
    assert ReservationEvent.objects.get(reservation=made).comment == "Dean asked"
    assert AuditEvent.objects.get(action="reservation.created").detail["overridden"] == made.overridden


def test_availability_is_never_overridden(lab) -> None:
    boss = actor(make_staff(lab.library, [Permission.OVERRIDE_RESERVATION_RULES]))
    policy(lab, title_required=True)
    book(lab, at(10, 10), at(10, 12), title="Class")
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 11), at(10, 13), actor=boss, override_comment="Please", patron=make_patron(lab.library))
    assert codes(refused) == ["resource_booked"]  # the overridable title reason is not listed again


# --- cancelling, types, kits ------------------------------------------------------------------------------


def test_cancelling_frees_the_resource_at_once(lab) -> None:
    first = book(lab, at(10, 10), at(10, 12))
    reservations.cancel_reservation(actor=SYSTEM, reservation=first, comment="Plans changed")
    assert not Occupancy.objects.filter(reservation=first, active=True).exists()
    second = book(lab, at(10, 10), at(10, 12), patron=make_patron(lab.library))
    assert second.state == "reserved"
    first.refresh_from_db()
    assert first.state == "cancelled"
    assert list(first.events.values_list("from_state", "to_state", "comment")) == [
        ("", "reserved", ""), ("reserved", "cancelled", "Plans changed"),
    ]  # fmt: skip


def test_type_holds_count_against_the_units_in_service(lab) -> None:
    span = (at(10, 10), at(10, 12))
    book(lab, *span, lines=[{"resource_type": lab.laptops.pk, "quantity": 2}])
    assert queries.free_unit_count(lab.center, lab.laptops, *span) == 0
    assert queries.free_resources(lab.center, lab.laptops, *span) == []
    for lines in ([{"resource_type": lab.laptops.pk}], [{"resource": lab.spare.pk}]):
        with pytest.raises(Refused) as refused:
            book(lab, *span, lines=lines, patron=make_patron(lab.library))
        assert codes(refused) == ["type_units_unavailable"]
    book(lab, at(10, 12), at(10, 14), lines=[{"resource_type": lab.laptops.pk, "quantity": 2}])  # back to back


def test_a_specific_booking_and_a_hold_share_the_units(lab) -> None:
    span = (at(10, 10), at(10, 12))
    book(lab, *span)  # LAP-1
    assert queries.free_unit_count(lab.center, lab.laptops, *span) == 1
    assert queries.free_resources(lab.center, lab.laptops, *span) == [lab.spare]
    book(lab, *span, lines=[{"resource_type": lab.laptops.pk}], patron=make_patron(lab.library))
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 11), at(10, 13), lines=[{"resource_type": lab.laptops.pk}], patron=make_patron(lab.library))
    assert codes(refused) == ["type_units_unavailable"]
    assert "0 of 2 Laptops" in refused.value.reasons[0]["message"]


def test_a_unit_out_of_service_is_not_promised(lab) -> None:
    catalog.take_out_of_service(actor=SYSTEM, resource=lab.spare, from_=at(10, 11))
    assert queries.free_unit_count(lab.center, lab.laptops, at(10, 8), at(10, 10)) == 2
    assert queries.free_unit_count(lab.center, lab.laptops, at(10, 10), at(10, 12)) == 1
    book(lab, at(10, 10), at(10, 12), lines=[{"resource_type": lab.laptops.pk}])
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 10), at(10, 12), lines=[{"resource_type": lab.laptops.pk}], patron=make_patron(lab.library))
    assert codes(refused) == ["type_units_unavailable"]


def test_booking_a_kit_books_its_parts(lab) -> None:
    kits = make_type(lab.library, "Kits", centers=[lab.center], buffer_after_minutes=60)
    kit = make_resource(lab.library, kits, lab.center, identifier="KIT-1")
    catalog.save_resource(actor=SYSTEM, library=lab.library, resource=lab.spare, data={"contained_in": kit.pk})
    made = book(lab, at(10, 10), at(10, 12), lines=[{"resource": kit.pk}])
    rows = {o.resource_id: o.blocked_until for o in Occupancy.objects.filter(reservation=made)}
    assert rows == {kit.pk: at(10, 13), lab.spare.pk: at(10, 13)}  # the part keeps the kit's buffer
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 12, 30), at(10, 14), lines=[{"resource": lab.spare.pk}], patron=make_patron(lab.library))
    assert codes(refused) == ["resource_buffer"]
    with pytest.raises(FieldError, match="already in this reservation"):
        book(lab, at(11, 10), at(11, 12), lines=[{"resource": kit.pk}, {"resource": lab.spare.pk}])


# --- approval, rejection and the transition table on the database -----------------------------------------


@pytest.fixture
def pending(lab):
    policy(lab, approval_required=True)
    return book(lab, at(10, 10), at(10, 12), actor=PORTAL, channel="portal")


def test_approval_reserves_and_is_recorded(lab, pending) -> None:
    user = make_staff(lab.library, [Permission.MANAGE_RESOURCES])
    approver = actor(user)
    reservations.approve_reservation(actor=approver, reservation=pending, comment="OK")
    pending.refresh_from_db()
    assert pending.state == "reserved"
    assert list(pending.events.values_list("from_state", "to_state", "by")) == [
        ("", "pending_approval", None), ("pending_approval", "reserved", user.pk),
    ]  # fmt: skip
    assert AuditEvent.objects.filter(action="reservation.approve", actor=user).exists()
    with pytest.raises(Conflict) as refused:
        reservations.approve_reservation(actor=approver, reservation=pending)
    assert refused.value.code == "transition_not_allowed"


def test_approval_checks_again_under_the_lock(lab, pending) -> None:
    catalog.take_out_of_service(actor=SYSTEM, resource=lab.laptop)
    with pytest.raises(Refused) as refused:
        reservations.approve_reservation(actor=SYSTEM, reservation=pending)
    assert codes(refused) == ["resource_out_of_service"]
    catalog.return_to_service(actor=SYSTEM, resource=lab.laptop)
    blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="ID check")
    with pytest.raises(Refused) as refused:
        reservations.approve_reservation(actor=SYSTEM, reservation=pending)
    assert codes(refused) == ["blocked_by_staff"]
    pending.refresh_from_db()
    assert pending.state == "pending_approval"


def test_a_pending_reservation_holds_its_slot(lab, pending) -> None:
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 10), at(10, 12), patron=make_patron(lab.library))
    assert codes(refused) == ["resource_booked"]


def test_rejection_needs_a_comment_and_frees_the_slot(lab, pending) -> None:
    with pytest.raises(FieldError, match="required"):
        reservations.reject_reservation(actor=SYSTEM, reservation=pending, comment=" ")
    reservations.reject_reservation(actor=SYSTEM, reservation=pending, comment="Equipment reserved for a class")
    pending.refresh_from_db()
    assert pending.state == "rejected"
    assert pending.events.last().comment == "Equipment reserved for a class"
    book(lab, at(10, 10), at(10, 12), patron=make_patron(lab.library))


@pytest.mark.parametrize(
    ("final", "steps"),
    [("cancelled", ["approve", "reject", "cancel"]), ("rejected", ["approve", "reject", "cancel"])],
)
def test_ended_reservations_refuse_every_step(lab, pending, final, steps) -> None:
    if final == "cancelled":
        reservations.cancel_reservation(actor=SYSTEM, reservation=pending)
    else:
        reservations.reject_reservation(actor=SYSTEM, reservation=pending, comment="No")
    calls = {
        "approve": lambda: reservations.approve_reservation(actor=SYSTEM, reservation=pending),
        "reject": lambda: reservations.reject_reservation(actor=SYSTEM, reservation=pending, comment="x"),
        "cancel": lambda: reservations.cancel_reservation(actor=SYSTEM, reservation=pending),
    }
    for step in steps:
        with pytest.raises(Conflict) as refused:
            calls[step]()
        assert refused.value.code == "transition_not_allowed"


def test_a_reserved_reservation_cannot_be_approved_or_rejected(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    for call in (
        lambda: reservations.approve_reservation(actor=SYSTEM, reservation=made),
        lambda: reservations.reject_reservation(actor=SYSTEM, reservation=made, comment="x"),
    ):
        with pytest.raises(Conflict, match="reserved reservation cannot be"):
            call()


# --- editing ------------------------------------------------------------------------------------------------


def test_editing_a_pending_reservation_moves_its_hold(lab, pending) -> None:
    edited = reservations.edit_reservation(
        actor=PORTAL, reservation=pending, starts_at=at(11, 10), ends_at=at(11, 12), title="Moved"
    )
    assert (edited.state, edited.starts_at, edited.title) == ("pending_approval", at(11, 10), "Moved")
    assert list(Occupancy.objects.filter(reservation=pending).values_list("blocked_from", flat=True)) == [at(11, 10)]
    book(lab, at(10, 10), at(10, 12), patron=make_patron(lab.library))  # the old slot is free
    assert "starts_at" in AuditEvent.objects.get(action="reservation.edited").detail["fields"]


def test_editing_can_swap_lines_and_is_checked_against_other_bookings(lab, pending) -> None:
    book(lab, at(10, 10), at(10, 12), lines=[{"resource": lab.spare.pk}], patron=make_patron(lab.library))
    with pytest.raises(Refused) as refused:
        reservations.edit_reservation(
            actor=PORTAL, reservation=pending, lines=[{"resource_type": lab.laptops.pk, "quantity": 2}]
        )
    assert codes(refused) == ["type_units_unavailable"]
    reservations.edit_reservation(actor=PORTAL, reservation=pending, lines=[{"resource_type": lab.laptops.pk}])
    assert Occupancy.objects.get(reservation=pending).resource is None


def test_an_approved_reservation_can_only_be_cancelled(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    with pytest.raises(Conflict) as refused:
        reservations.edit_reservation(actor=SYSTEM, reservation=made, title="New")
    assert refused.value.code == "not_editable"


def test_edits_are_refused_when_the_old_or_the_new_start_is_inside_the_lead_time(lab, pending) -> None:
    policy(lab, min_lead_minutes=24 * 60)
    with pytest.raises(Refused) as refused:  # the new start is too close
        reservations.edit_reservation(actor=PORTAL, reservation=pending, starts_at=at(4, 10), ends_at=at(4, 12))
    assert [(r["code"], r["which"]) for r in refused.value.reasons] == [("inside_lead_time", "start")]
    with clock.frozen(at(9, 12)):  # the current start is now less than a day away
        with pytest.raises(Refused) as refused:
            reservations.edit_reservation(actor=PORTAL, reservation=pending, starts_at=at(20, 10), ends_at=at(20, 12))
        assert [(r["code"], r["which"]) for r in refused.value.reasons] == [("inside_lead_time", "current start")]
    with clock.frozen(at(9, 10)):  # exactly a day ahead: still allowed
        reservations.edit_reservation(actor=PORTAL, reservation=pending, starts_at=at(20, 10), ends_at=at(20, 12))


# --- availability queries ---------------------------------------------------------------------------------


def test_why_not_names_each_reason(lab) -> None:
    catalog.save_resource_type(
        actor=SYSTEM, library=lab.library, resource_type=lab.laptops,
        data={"buffer_after_minutes": 30, "requires_authorization": True, "visible_in_portal": False},
    )  # fmt: skip
    catalog.grant_authorization(actor=SYSTEM, patron=lab.patron, resource_type=lab.laptops)
    policy(lab, open_hours={"mon": [["08:00", "18:00"]]})
    book(lab, at(10, 10), at(10, 12))
    laptop = lab.laptop.__class__.objects.select_related("center__library", "resource_type").get(pk=lab.laptop.pk)
    stranger = make_patron(lab.library)
    assert [r.code for r in queries.why_not(laptop, at(10, 11), at(10, 13))] == ["resource_booked"]
    assert [r.code for r in queries.why_not(laptop, at(10, 12, 15), at(10, 13))] == ["resource_buffer"]
    assert queries.why_not(laptop, at(10, 12, 30), at(10, 13)) == []
    assert [r.code for r in queries.why_not(laptop, at(10, 13), at(10, 14), patron=stranger, portal=True)] == [
        "resource_hidden",
        "not_authorized_for_resource_type",
    ]
    assert [r.code for r in queries.why_not(laptop, at(10, 7), at(10, 9))] == ["outside_open_hours"]
    catalog.take_out_of_service(actor=SYSTEM, resource=laptop)
    laptop.refresh_from_db()
    assert [r.code for r in queries.why_not(laptop, at(10, 14), at(10, 15))] == ["resource_out_of_service"]


def test_why_not_tells_when_holds_promised_every_unit(lab) -> None:
    book(lab, at(10, 10), at(10, 12), lines=[{"resource_type": lab.laptops.pk, "quantity": 2}])
    spare = lab.spare.__class__.objects.select_related("center__library", "resource_type").get(pk=lab.spare.pk)
    assert [r.code for r in queries.why_not(spare, at(10, 11), at(10, 13))] == ["type_units_unavailable"]


def test_free_counts_for_every_type_of_a_center(lab) -> None:
    tripods = make_type(lab.library, "Tripods", centers=[lab.center])
    make_resource(lab.library, tripods, lab.center)
    book(lab, at(10, 10), at(10, 12))
    assert queries.free_counts_by_type(lab.center, at(10, 11), at(10, 13)) == {lab.laptops.pk: 1, tripods.pk: 1}
    assert queries.free_counts_by_type(lab.center, at(10, 12), at(10, 13)) == {lab.laptops.pk: 2, tripods.pk: 1}


def test_authorization_is_needed_for_types_that_require_it_and_expires(lab) -> None:
    cameras = make_type(lab.library, "Cameras", centers=[lab.center], requires_authorization=True)
    dslr = make_type(lab.library, "DSLR", centers=[lab.center], parent=cameras.pk)
    camera = make_resource(lab.library, dslr, lab.center)
    with pytest.raises(Refused) as refused:
        book(lab, at(10, 10), at(10, 12), lines=[{"resource": camera.pk}])
    assert codes(refused) == ["not_authorized_for_resource_type"]
    catalog.grant_authorization(actor=SYSTEM, patron=lab.patron, resource_type=cameras, expires_on="2027-05-09")
    with pytest.raises(Refused):  # it ends the day before the pickup
        book(lab, at(10, 10), at(10, 12), lines=[{"resource": camera.pk}])
    book(lab, at(9, 10), at(9, 12), lines=[{"resource": camera.pk}])


# --- quota and deletion ----------------------------------------------------------------------------------


def test_the_quota_counts_pending_reservations_and_frees_with_cancellation(lab) -> None:
    policy(lab, max_open_reservations=2, approval_required=True)
    book(lab, at(10, 10), at(10, 12), actor=PORTAL, channel="portal")
    second = book(lab, at(11, 10), at(11, 12))
    with pytest.raises(Refused) as refused:
        book(lab, at(12, 10), at(12, 12))
    assert codes(refused) == ["too_many_open_reservations"]
    reservations.cancel_reservation(actor=SYSTEM, reservation=second)
    book(lab, at(12, 10), at(12, 12))


def test_open_reservations_refuse_the_patrons_deletion(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    with pytest.raises(DeletionRefused) as refused:
        delete_patron(actor=SYSTEM, patron=lab.patron)
    assert [r["code"] for r in refused.value.reasons] == ["has_open_reservations"]
    reservations.cancel_reservation(actor=SYSTEM, reservation=made)
    delete_patron(actor=SYSTEM, patron=lab.patron)
    # The cancelled reservation stays for statistics, without the person.
    kept = Reservation.objects.get(pk=made.pk)
    assert kept.patron_id is None
    assert kept.state == State.CANCELLED


def test_the_data_download_holds_the_reservations(lab) -> None:
    from patronage.privacy import export

    book(lab, at(10, 10), at(10, 12), title="Seminar")
    data = export.patron_data(lab.patron)
    assert data["reservations"][0]["title"] == "Seminar"
    assert data["reservations"][0]["state_label"] == "Reserved"
    assert len(data["reservation_lines"]) == len(data["reservation_events"]) == 1


# --- the database's own guard ------------------------------------------------------------------------------


@pytest.mark.postgres_only
def test_postgresql_refuses_overlapping_rows_whatever_writes_them(lab) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the exclusion constraint exists on PostgreSQL only")
    made = book(lab, at(10, 10), at(10, 12))
    row = Occupancy.objects.get(reservation=made)
    row.pk = None
    row.blocked_from, row.blocked_until = at(10, 11, 59), at(10, 14)
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()
    row.blocked_from = at(10, 12)  # back to back is fine
    row.save()
    Occupancy.objects.filter(reservation=made).update(active=False)  # inactive rows do not count
    row.pk = None
    row.blocked_from = at(10, 10)
    row.save()


def test_time_zone_of_the_shown_times(lab) -> None:
    made = book(lab, at(10, 10), at(10, 12))
    assert made.starts_at.astimezone(ZONE).hour == 10
