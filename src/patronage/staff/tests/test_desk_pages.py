"""The desk pages: a center's day, checking a reservation out, walk-up, check-in, copy, and the job status."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse

from patronage.blocks import services as blocks
from patronage.circulation import services as desk
from patronage.circulation.models import Checkout, CheckoutItem
from patronage.core import clock
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation, ReservationEvent
from patronage.resources.models import Resource
from patronage.resources.tests.builders import NOW, at, make_center, make_resource, make_type
from tests.factories import SYSTEM, make_patron

from .conftest import StaffClient

pytestmark = pytest.mark.django_db

DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT]


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"staff:lending:{name}", kwargs=kwargs)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):  # Monday 2027-05-03 12:00 in New York, the library's time zone
        yield NOW


@pytest.fixture
def lab(lab: SimpleNamespace) -> SimpleNamespace:
    """The conftest's lab with a third laptop."""
    lab.third = make_resource(lab.library, lab.laptops, lab.center, identifier="LAP-3", name="Laptop three")
    return lab


def book(lab: SimpleNamespace, start: str = "13:00", end: str = "15:00", day: int = 3, **kwargs: Any) -> Reservation:
    return reservations.create_reservation(
        actor=SYSTEM, patron=kwargs.pop("patron", lab.patron), center=lab.center,
        starts_at=f"2027-05-{day:02d}T{start}", ends_at=f"2027-05-{day:02d}T{end}",
        lines=kwargs.pop("lines", [{"resource": lab.laptop.pk}]), **kwargs,
    )  # fmt: skip


def check_out(lab: SimpleNamespace, made: Reservation, scanned: list[str]) -> Checkout:
    with clock.frozen(made.starts_at):
        return desk.check_out(actor=SYSTEM, reservation=made, scanned=scanned)


def barcode_of(patron: Patron) -> str:
    return patron.barcodes.get(is_active=True).number


def text(response: Any) -> str:
    return response.content.decode()


# --- the whole desk flow ------------------------------------------------------------------------------------


def test_book_check_out_with_a_substitute_return_in_parts_and_complete(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    made = book(lab, lines=[{"resource": lab.laptop.pk}, {"resource_type": lab.laptops.pk}])
    client = staff_client(DESK)
    index = text(client.get(url("index")))
    assert url("desk", center_id=lab.center.pk) in index
    day = text(client.get(url("desk", center_id=lab.center.pk)))
    assert url("reservation-checkout", reservation_id=made.pk) in day.split('id="returns"')[0]
    assert url("reservation-checkout", reservation_id=made.pk) in text(
        client.get(url("reservation", reservation_id=made.pk))
    )

    with clock.frozen(at(3, 13, 5)):
        # LAP-1 is reserved but LAP-3 goes instead; LAP-2 fills the "one of this type" line.
        response = client.post(url("reservation-checkout", reservation_id=made.pk), {"scanned": "LAP-2\nLAP-3"})
        checkout = Checkout.objects.get(reservation=made)
        assert response.status_code == 302
        assert response["Location"] == url("checkout", checkout_id=checkout.pk)
        assert sorted(checkout.items.values_list("resource__identifier", flat=True)) == ["LAP-2", "LAP-3"]
        assert Reservation.objects.get(pk=made.pk).state == "checked_out"
        day = text(client.get(url("desk", center_id=lab.center.pk)))
        returns = day.split('id="returns"')[1].split('id="late"')[0]
        assert url("checkout", checkout_id=checkout.pk) in returns

        page = text(client.get(url("checkout", checkout_id=checkout.pk)))
        assert page.count(">Out<") == 2
        spare_item = checkout.items.get(resource=lab.spare)
        response = client.post(
            url("checkout-checkin", checkout_id=checkout.pk),
            {"returned": [str(spare_item.pk)], f"note.{spare_item.pk}": "Scratched lid", "scanned": ""},
        )
        assert response.status_code == 302
    page = text(client.get(url("checkout", checkout_id=checkout.pk)))
    assert "Scratched lid" in page
    assert page.count(">Out<") == 1
    assert Resource.objects.get(pk=lab.spare.pk).condition_notes.endswith(": Scratched lid")
    assert Checkout.objects.get(pk=checkout.pk).completed_at is None

    with clock.frozen(at(3, 14)):
        response = client.post(url("checkout-checkin", checkout_id=checkout.pk), {"everything": "1"})
    assert response.status_code == 302
    assert Checkout.objects.get(pk=checkout.pk).state == "completed"
    assert Reservation.objects.get(pk=made.pk).state == "completed"
    page = text(client.get(url("checkout", checkout_id=checkout.pk)))
    assert "completed" in page
    assert ">Out<" not in page
    assert url("checkout-copy", checkout_id=checkout.pk) in page


def test_check_in_without_anything_ticked_or_scanned_says_what_to_do(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    checkout = check_out(lab, book(lab), ["LAP-1"])
    client = staff_client(DESK)
    response = client.post(url("checkout-checkin", checkout_id=checkout.pk), {"scanned": ""})
    assert response.status_code == 400
    assert "Tick or scan what came back" in text(response)
    response = client.post(url("checkout-checkin", checkout_id=checkout.pk), {"scanned": "LAP-2"})
    assert response.status_code == 400
    assert "Not out in this checkout: LAP-2" in text(response)
    assert not CheckoutItem.objects.filter(returned_at__isnull=False).exists()


# --- refusals and the override -------------------------------------------------------------------------------


def test_a_refused_check_out_shows_every_reason_with_its_remedy(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    made = book(lab)
    blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="Lost keys")
    client = staff_client(DESK)
    with clock.frozen(at(3, 13)):
        form = text(client.get(url("reservation-checkout", reservation_id=made.pk)))
        assert 'name="override_comment"' not in form  # no override permission
        response = client.post(
            url("reservation-checkout", reservation_id=made.pk), {"scanned": "LAP-1", "override_comment": "Please"}
        )
    assert response.status_code == 409
    page = text(response)
    assert "<code>blocked_by_staff</code>" in page
    assert "What to do:" in page
    assert Reservation.objects.get(pk=made.pk).state == "reserved"
    assert not Checkout.objects.exists()


def test_override_needs_its_permission_and_is_kept(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    made = book(lab)
    blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="Lost keys")
    client = staff_client([*DESK, Permission.OVERRIDE_RESERVATION_RULES])
    with clock.frozen(at(3, 13)):
        assert 'name="override_comment"' in text(client.get(url("reservation-checkout", reservation_id=made.pk)))
        response = client.post(
            url("reservation-checkout", reservation_id=made.pk), {"scanned": "LAP-1", "override_comment": "Dean asked"}
        )
    assert response.status_code == 302
    event = ReservationEvent.objects.filter(reservation=made).latest("id")
    assert (event.to_state, "Dean asked" in event.comment, "blocked_by_staff" in event.comment) == (
        "checked_out", True, True,
    )  # fmt: skip


def test_bad_scans_and_early_pickup_are_explained(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    made = book(lab)
    client = staff_client(DESK)
    with clock.frozen(at(3, 13)):
        response = client.post(url("reservation-checkout", reservation_id=made.pk), {"scanned": "NOPE-9"})
        assert response.status_code == 400
        assert "Unknown resource(s) at this library: NOPE-9" in text(response)
        assert 'aria-invalid="true"' in text(response)
    with clock.frozen(at(3, 12, 30)):
        response = client.post(url("reservation-checkout", reservation_id=made.pk), {"scanned": "LAP-1"}, follow=True)
    assert "starts at 2027-05-03 13:00" in text(response)
    assert not Checkout.objects.exists()


# --- walk-up ---------------------------------------------------------------------------------------------------


def test_walk_up_checks_out_by_patron_barcode(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client(DESK)
    address = url("walk-up", center_id=lab.center.pk)
    assert client.get(address).status_code == 200
    response = client.post(address, {"patron": "0000", "ends_at": "2027-05-03T16:00", "scanned": "LAP-1"})
    assert response.status_code == 400
    assert "No patron here has the barcode" in text(response)
    data = {"patron": barcode_of(lab.patron), "ends_at": "2027-05-03T16:00", "scanned": "LAP-1", "title": "Demo"}
    response = client.post(address, data)
    assert response.status_code == 302
    checkout = Checkout.objects.get()
    assert (checkout.patron_id, checkout.reservation.title, checkout.reservation.state) == (
        lab.patron.pk, "Demo", "checked_out",
    )  # fmt: skip
    other = make_patron(lab.patron.library)
    response = client.post(address, {**data, "patron": barcode_of(other)})
    assert response.status_code == 409
    assert "<code>resource_booked</code>" in text(response)
    assert Reservation.objects.count() == 1


# --- copy --------------------------------------------------------------------------------------------------------


def test_copy_a_completed_checkout_one_week_later(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    made = book(lab, title="Film club", note="Room 2")
    checkout = check_out(lab, made, ["LAP-2"])  # a substitute: the copy books what was handed out
    with clock.frozen(at(3, 14)):
        desk.check_in(actor=SYSTEM, checkout=checkout)
    client = staff_client(DESK)
    form = text(client.get(url("checkout-copy", checkout_id=checkout.pk)))
    assert 'value="2027-05-10T13:00"' in form
    assert 'value="2027-05-10T15:00"' in form
    response = client.post(
        url("checkout-copy", checkout_id=checkout.pk), {"starts_at": "2027-05-10T13:00", "ends_at": "2027-05-10T15:00"}
    )
    assert response.status_code == 302
    copy = Reservation.objects.exclude(pk=made.pk).get()
    assert response["Location"] == url("reservation", reservation_id=copy.pk)
    assert (copy.patron_id, copy.title, copy.note_to_staff, copy.state) == (
        lab.patron.pk,
        "Film club",
        "Room 2",
        "reserved",
    )
    assert [line.resource_id for line in copy.lines.all()] == [lab.spare.pk]
    # The same span again is refused: the laptop is taken by the copy; every reason is shown.
    response = client.post(
        url("checkout-copy", checkout_id=checkout.pk), {"starts_at": "2027-05-10T14:00", "ends_at": "2027-05-10T16:00"}
    )
    assert response.status_code == 409
    assert "<code>resource_booked</code>" in text(response)
    assert Reservation.objects.count() == 2


def test_an_open_checkout_cannot_be_copied(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    checkout = check_out(lab, book(lab), ["LAP-1"])
    client = staff_client(DESK)
    assert url("checkout-copy", checkout_id=checkout.pk) not in text(
        client.get(url("checkout", checkout_id=checkout.pk))
    )
    response = client.post(
        url("checkout-copy", checkout_id=checkout.pk),
        {"starts_at": "2027-05-10T13:00", "ends_at": "2027-05-10T15:00"},
        follow=True,
    )
    assert "Only a completed checkout can be copied" in text(response)
    assert Reservation.objects.count() == 1


# --- lateness, invoices and the jobs ------------------------------------------------------------------------------


def test_late_checkouts_and_their_invoice_show_on_the_desk_and_the_checkout(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"overdue_fee": "5.00"})
    checkout = check_out(lab, book(lab), ["LAP-1"])
    client = staff_client(DESK)
    with clock.frozen(at(3, 16)):
        desk.run_job("invoice_overdue")
        day = text(client.get(url("desk", center_id=lab.center.pk)))
        late = day.split('id="late"')[1].split('id="open"')[0]
        assert url("checkout", checkout_id=checkout.pk) in late
        page = text(client.get(url("checkout", checkout_id=checkout.pk)))
    assert "Late: due 2027-05-03 15:00" in page
    assert "5.00 USD raised" in page
    assert "still owed 5.00" in page


def test_the_desk_warns_when_the_jobs_stop_running(
    staff_client: StaffClient, lab: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATRONAGE_JOBS_INTERVAL_SECONDS", "60")
    client = staff_client(DESK)
    address = url("desk", center_id=lab.center.pk)
    assert "mark_late has never run" in text(client.get(address))
    for name in ("mark_late", "invoice_overdue", "release_no_shows"):
        desk.run_job(name)
    assert "may have stopped" not in text(client.get(address))
    with clock.frozen(at(3, 12, 3)):  # three intervals: still fine
        assert "may have stopped" not in text(client.get(address))
    with clock.frozen(at(3, 12, 4)):
        desk.run_job("release_no_shows")
        page = text(client.get(address))
    assert "may have stopped" in page
    assert "mark_late last ran 2027-05-03 12:00" in page
    assert "release_no_shows last ran" not in page


# --- who may use the pages -------------------------------------------------------------------------------------


def test_the_desk_pages_need_check_out_resources(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    made = book(lab)
    done = check_out(lab, book(lab, "16:00", "17:00"), ["LAP-1"])
    client = staff_client([Permission.VIEW_PATRONS, Permission.MANAGE_RESOURCES])
    with clock.frozen(at(3, 13)):
        for address, data in (
            (url("desk", center_id=lab.center.pk), None),
            (url("walk-up", center_id=lab.center.pk), {"patron": barcode_of(lab.patron), "ends_at": "2027-05-03T14:00",
                                                      "scanned": "LAP-2"}),
            (url("reservation-checkout", reservation_id=made.pk), {"scanned": "LAP-1"}),
            (url("checkout", checkout_id=done.pk), None),
            (url("checkout-checkin", checkout_id=done.pk), {"everything": "1"}),
            (url("checkout-copy", checkout_id=done.pk), {"starts_at": "2027-05-10T13:00", "ends_at": "2027-05-10T14:00"}),
        ):  # fmt: skip
            assert client.get(address).status_code == 403, address
            if data is not None:
                assert client.post(address, data).status_code == 403, address
    assert Checkout.objects.count() == 1
    assert Checkout.objects.get().completed_at is None
    assert Reservation.objects.count() == 2


def test_another_librarys_checkout_and_center_are_not_found(
    staff_client: StaffClient, lab: SimpleNamespace, other_library: Library
) -> None:
    far = make_center(other_library, "far")
    kind = make_type(other_library, "Far type", centers=[far])
    make_resource(other_library, kind, far, identifier="FAR-1")
    stranger = make_patron(other_library)
    made = reservations.create_reservation(
        actor=SYSTEM, patron=stranger, center=far, starts_at="2027-05-03T13:00", ends_at="2027-05-03T15:00",
        lines=[{"resource_type": kind.pk}],
    )  # fmt: skip
    theirs = check_out(lab, made, ["FAR-1"])
    client = staff_client()
    with clock.frozen(at(3, 13)):
        for address in (
            url("desk", center_id=far.pk),
            url("walk-up", center_id=far.pk),
            url("checkout", checkout_id=theirs.pk),
            url("checkout-copy", checkout_id=theirs.pk),
        ):
            assert client.get(address).status_code == 404, address
        assert client.post(url("checkout-checkin", checkout_id=theirs.pk), {"everything": "1"}).status_code == 404
    assert Checkout.objects.get(pk=theirs.pk).completed_at is None
