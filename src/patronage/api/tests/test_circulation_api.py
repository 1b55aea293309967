"""The desk API: checkouts, check-out of a reservation, walk-up, check-in, copy and the lending jobs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from patronage.blocks import services as blocks
from patronage.circulation import services as desk
from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.libraries.permissions import Permission
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.models import Resource
from patronage.resources.tests.builders import NOW, at, make_center, make_lab, make_resource, make_type
from tests.factories import SYSTEM, make_library, make_patron

from .test_api import api_for

pytestmark = pytest.mark.django_db

DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT]


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def lab() -> SimpleNamespace:
    lab = make_lab(make_library("lend", name="Lending library"))
    lab.third = make_resource(lab.library, lab.laptops, lab.center, identifier="LAP-3")
    return lab


def book(lab: SimpleNamespace, lines: list[dict[str, int]] | None = None, **kwargs: Any) -> Reservation:
    return reservations.create_reservation(
        actor=SYSTEM, patron=kwargs.pop("patron", lab.patron), center=kwargs.pop("center", lab.center),
        starts_at="2027-05-03T13:00", ends_at="2027-05-03T15:00",
        lines=lines or [{"resource": lab.laptop.pk}], **kwargs,
    )  # fmt: skip


def test_the_desk_flow_through_the_api(lab: SimpleNamespace) -> None:
    made = book(lab, [{"resource": lab.laptop.pk}, {"resource_type": lab.laptops.pk}])
    api = api_for(lab.library, DESK)
    with clock.frozen(at(3, 13, 5)):
        status, body, _ = api.call("post", f"/api/v1/reservations/{made.pk}/checkout/", {"scanned": ["LAP-2", "LAP-3"]})
        assert status == 201, body
        assert sorted(i["identifier"] for i in body["items"]) == ["LAP-2", "LAP-3"]
        assert (body["state"], body["late"], body["reservation"]) == ("open", False, made.pk)
        checkout_id = body["id"]
        status, body, _ = api.call(
            "post", f"/api/v1/checkouts/{checkout_id}/checkin/",
            {"scanned": ["LAP-3"], "condition_notes": {"LAP-3": "Sticky keys"}},
        )  # fmt: skip
        assert status == 200, body
        back = {i["identifier"]: i for i in body["items"]}
        assert (back["LAP-3"]["condition_note"], back["LAP-3"]["returned_by"]) == ("Sticky keys", "clerk")
        assert back["LAP-2"]["returned_at"] is None
        assert body["completed_at"] is None
    with clock.frozen(at(3, 14)):
        status, body, _ = api.call("post", f"/api/v1/checkouts/{checkout_id}/checkin/", {})
        assert (status, body["state"]) == (200, "completed")
        status, body, _ = api.call("post", f"/api/v1/checkouts/{checkout_id}/checkin/", {})
        assert (status, body["code"]) == (409, "checkout_completed")
    assert Reservation.objects.get(pk=made.pk).state == "completed"
    assert Resource.objects.get(pk=lab.third.pk).condition_notes.endswith(": Sticky keys")
    status, body, _ = api.call("get", f"/api/v1/checkouts/{checkout_id}/")
    assert (status, body["state"], body["overdue_invoice"]) == (200, "completed", None)


def test_refusals_carry_every_reason_and_the_override_needs_its_permission(lab: SimpleNamespace) -> None:
    made = book(lab)
    api = api_for(lab.library, DESK)
    path = f"/api/v1/reservations/{made.pk}/checkout/"
    with clock.frozen(at(3, 13)):
        status, body, _ = api.call("post", path, {"scanned": ["NOPE"]})
        assert status == 400
        assert "Unknown resource" in body["errors"]["scanned"][0]
        status, body, _ = api.call("post", path, {})
        assert "scanned" in body["errors"]
        blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="Lost keys")
        status, body, response = api.call("post", path, {"scanned": ["LAP-1"]})
        assert (status, body["code"], response["Content-Type"]) == (409, "refused", "application/problem+json")
        [reason] = body["reasons"]
        assert (reason["code"], reason["overridable"], bool(reason["remedy"])) == ("blocked_by_staff", "true", True)
        status, body, _ = api.call("post", path, {"scanned": ["LAP-1"], "override_comment": "Dean asked"})
        assert (status, body["code"]) == (403, "permission_denied")
        assert not Checkout.objects.exists()
        boss = api_for(lab.library, [*DESK, Permission.OVERRIDE_RESERVATION_RULES], username="boss")
        status, body, _ = boss.call("post", path, {"scanned": ["LAP-1"], "override_comment": "Dean asked"})
        assert status == 201, body
        status, body, _ = boss.call("post", path, {"scanned": ["LAP-1"], "override_comment": "again"})
        assert (status, body["code"]) == (409, "transition_not_allowed")  # a retry hands out nothing twice
    assert Checkout.objects.count() == 1


def test_pickup_before_the_start_is_refused(lab: SimpleNamespace) -> None:
    made = book(lab)
    status, body, _ = api_for(lab.library, DESK).call(
        "post", f"/api/v1/reservations/{made.pk}/checkout/", {"scanned": ["LAP-1"]}
    )
    assert (status, body["code"]) == (409, "pickup_too_early")


def test_walk_up(lab: SimpleNamespace) -> None:
    api = api_for(lab.library, DESK)
    body = {"patron": lab.patron.pk, "center": lab.center.pk, "ends_at": "2027-05-03T16:00", "scanned": ["LAP-1"]}
    status, answer, _ = api.call("post", "/api/v1/checkouts/", {**body, "title": "Demo"})
    assert status == 201, answer
    assert (answer["patron"], answer["items"][0]["identifier"]) == (lab.patron.pk, "LAP-1")
    assert Reservation.objects.get(pk=answer["reservation"]).state == "checked_out"
    other = make_patron(lab.library)
    status, answer, _ = api.call("post", "/api/v1/checkouts/", {**body, "patron": other.pk})
    assert (status, answer["code"]) == (409, "refused")
    assert [r["code"] for r in answer["reasons"]] == ["resource_booked"]
    status, answer, _ = api.call("post", "/api/v1/checkouts/", {"patron": other.pk, "scanned": ["LAP-2"]})
    assert (status, set(answer["errors"])) == (400, {"center"})
    assert Checkout.objects.count() == 1


def test_list_filters_and_pages(lab: SimpleNamespace) -> None:
    first = book(lab)
    second = book(lab, [{"resource": lab.spare.pk}], patron=make_patron(lab.library))
    with clock.frozen(at(3, 13)):
        one = desk.check_out(actor=SYSTEM, reservation=first, scanned=["LAP-1"])
        two = desk.check_out(actor=SYSTEM, reservation=second, scanned=["LAP-2"])
        desk.check_in(actor=SYSTEM, checkout=two)
    api = api_for(lab.library, DESK)
    status, body, _ = api.call("get", "/api/v1/checkouts/", {"page_size": 1})
    assert (status, body["count"], len(body["results"])) == (200, 2, 1)
    status, body, _ = api.call("get", "/api/v1/checkouts/", {"state": "completed"})
    assert [c["id"] for c in body["results"]] == [two.pk]
    status, body, _ = api.call("get", "/api/v1/checkouts/", {"patron": lab.patron.pk, "center": lab.center.pk})
    assert [c["id"] for c in body["results"]] == [one.pk]
    status, body, _ = api.call("get", "/api/v1/checkouts/", {"state": "lost"})
    assert (status, list(body["errors"])) == (400, ["state"])
    with clock.frozen(at(3, 16)):
        status, body, _ = api.call("get", f"/api/v1/checkouts/{one.pk}/")
    assert (body["state"], body["late"]) == ("open", True)  # late from the minute its end passed


def test_copy_a_completed_checkout(lab: SimpleNamespace) -> None:
    made = book(lab, title="Film club")
    with clock.frozen(at(3, 13)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-3"])
    api = api_for(lab.library, DESK)
    path = f"/api/v1/checkouts/{checkout.pk}/copy/"
    status, body, _ = api.call("post", path, {"starts_at": "2027-05-10T13:00", "ends_at": "2027-05-10T15:00"})
    assert (status, body["code"]) == (409, "checkout_not_completed")
    with clock.frozen(at(3, 14)):
        desk.check_in(actor=SYSTEM, checkout=checkout)
    status, body, _ = api.call("post", path, {"starts_at": "2027-05-10T13:00"})
    assert (status, list(body["errors"])) == (400, ["ends_at"])
    status, body, _ = api.call("post", path, {"starts_at": "2027-05-10T13:00", "ends_at": "2027-05-10T15:00"})
    assert status == 201, body
    assert (body["patron"], body["title"], body["channel"], body["state"]) == (
        lab.patron.pk, "Film club", "api", "reserved",
    )  # fmt: skip
    assert [line["resource"] for line in body["lines"]] == [lab.third.pk]
    status, body, _ = api.call("post", path, {"starts_at": "2027-05-10T13:00", "ends_at": "2027-05-10T15:00"})
    assert (status, body["code"]) == (409, "refused")  # a retry cannot book the same resources twice
    assert Reservation.objects.count() == 2


def test_the_lending_jobs_report_their_last_runs(lab: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATRONAGE_JOBS_INTERVAL_SECONDS", raising=False)
    api = api_for(lab.library, DESK)
    status, body, _ = api.call("get", "/api/v1/lending-jobs/")
    assert status == 200
    assert [(j["name"], j["runs"], j["stale"]) for j in body] == [
        ("mark_late", 0, True), ("invoice_overdue", 0, True), ("release_no_shows", 0, True),
    ]  # fmt: skip
    made = book(lab)
    with clock.frozen(at(3, 13, 30)):
        [released] = desk.run_job("release_no_shows")
        status, body, _ = api.call("get", "/api/v1/lending-jobs/")
    jobs = {j["name"]: j for j in body}
    assert released == made.pk
    assert (jobs["release_no_shows"]["touched_here"], jobs["release_no_shows"]["stale"]) == (1, False)
    assert jobs["release_no_shows"]["stale_after_seconds"] == 900
    with clock.frozen(at(3, 13, 46)):
        status, body, _ = api.call("get", "/api/v1/lending-jobs/")
    assert {j["name"]: j["stale"] for j in body}["release_no_shows"] is True
    elsewhere = make_library("else")
    outsider = api_for(elsewhere, DESK, username="outsider")
    with clock.frozen(at(3, 13, 30)):
        status, body, _ = outsider.call("get", "/api/v1/lending-jobs/")
    assert {j["name"]: j["touched_here"] for j in body}["release_no_shows"] == 0
    nobody = api_for(elsewhere, [Permission.VIEW_PATRONS], username="viewer")
    assert nobody.call("get", "/api/v1/lending-jobs/")[0] == 403


def test_permissions_and_another_librarys_checkouts(lab: SimpleNamespace) -> None:
    with clock.frozen(at(3, 13)):
        mine = desk.check_out(actor=SYSTEM, reservation=book(lab), scanned=["LAP-1"])
    far_library = make_library("far")
    far = make_center(far_library, "far")
    kind = make_type(far_library, "Far type", centers=[far])
    make_resource(far_library, kind, far, identifier="FAR-1")
    theirs_reservation = book(lab, [{"resource_type": kind.pk}], patron=make_patron(far_library), center=far)
    with clock.frozen(at(3, 13)):
        theirs = desk.check_out(actor=SYSTEM, reservation=theirs_reservation, scanned=["FAR-1"])
    api = api_for(lab.library, DESK)
    for method, path in (
        ("get", f"/api/v1/checkouts/{theirs.pk}/"),
        ("post", f"/api/v1/checkouts/{theirs.pk}/checkin/"),
        ("post", f"/api/v1/checkouts/{theirs.pk}/copy/"),
    ):
        assert api.call(method, path, {})[0] == 404, path
    assert [c["id"] for c in api.call("get", "/api/v1/checkouts/")[1]["results"]] == [mine.pk]
    viewer = api_for(lab.library, [Permission.VIEW_PATRONS], username="viewer")
    assert viewer.call("get", f"/api/v1/checkouts/{mine.pk}/")[0] == 403
    assert viewer.call("post", f"/api/v1/checkouts/{mine.pk}/checkin/", {})[0] == 403
    assert Checkout.objects.filter(completed_at__isnull=False).count() == 0
