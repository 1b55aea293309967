"""Idempotency-Key on the API's creating and acting requests, as a retrying client sees it."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from patronage.api import idempotency
from patronage.api.models import IdempotencyKey
from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.fines import services as fines
from patronage.fines.models import Fee, Payment
from patronage.libraries.permissions import Permission
from patronage.reservations import services as booking
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import NOW, make_center, make_lab, make_resource, make_type
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library, make_patron

from .test_api import Api, api_for

DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT, Permission.ADD_FEES, Permission.TAKE_PAYMENTS]
KEY = {"Idempotency-Key": "7d9f0c1e-retry-me"}


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def lab(db: Any) -> SimpleNamespace:
    return make_lab(make_library("lend", name="Lending library"))


def body_for(lab: SimpleNamespace, **extra: Any) -> dict[str, Any]:
    return {
        "patron": lab.patron.pk, "center": lab.center.pk, "starts_at": "2027-05-04T10:00",
        "ends_at": "2027-05-04T12:00", "lines": [{"resource": lab.laptop.pk}], **extra,
    }  # fmt: skip


@pytest.mark.django_db
def test_a_retried_reservation_is_booked_once_and_answered_the_same(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    status, first, response = desk.call("post", "/api/v1/reservations/", body_for(lab), **KEY)
    assert status == 201, first
    assert "Idempotent-Replayed" not in response
    # The same request again (its keys in another order): the first answer, nothing booked again.
    reordered = dict(reversed(list(body_for(lab).items())))
    status, again, response = desk.call("post", "/api/v1/reservations/", reordered, **KEY)
    assert (status, again) == (201, first)
    assert response["Idempotent-Replayed"] == "true"
    assert Reservation.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_request_is_refused(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    assert desk.call("post", "/api/v1/reservations/", body_for(lab), **KEY)[0] == 201
    other = body_for(lab, lines=[{"resource": lab.spare.pk}])
    status, body, response = desk.call("post", "/api/v1/reservations/", other, **KEY)
    assert (status, body["code"]) == (409, "idempotency_key_reused")
    assert response["Content-Type"] == "application/problem+json"
    assert "new key" in body["detail"]
    # Another endpoint with the same key is another request too.
    status, body, _ = desk.call("post", f"/api/v1/patrons/{lab.patron.pk}/fees/", {"amount": "2.00"}, **KEY)
    assert (status, body["code"]) == (409, "idempotency_key_reused")
    assert Reservation.objects.count() == 1
    assert Fee.objects.count() == 0


@pytest.mark.django_db
def test_keys_belong_to_their_user(lab: SimpleNamespace) -> None:
    one = api_for(lab.library, DESK, username="one")
    two = api_for(lab.library, DESK, username="two")
    url = f"/api/v1/patrons/{lab.patron.pk}/fees/"
    assert one.call("post", url, {"amount": "2.00"}, **KEY)[0] == 201
    status, body, response = two.call("post", url, {"amount": "2.00"}, **KEY)
    assert status == 201, body
    assert "Idempotent-Replayed" not in response
    assert Fee.objects.count() == 2


@pytest.mark.django_db
def test_a_refusal_is_kept_for_the_key_but_a_server_error_is_not(
    lab: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    booking.create_reservation(
        actor=SYSTEM, patron=make_patron(lab.library), center=lab.center,
        starts_at=dt.datetime(2027, 5, 4, 9, tzinfo=NOW.tzinfo), ends_at=dt.datetime(2027, 5, 4, 11, tzinfo=NOW.tzinfo),
        lines=[{"resource": lab.laptop.pk}],
    )  # fmt: skip
    status, refused, _ = desk.call("post", "/api/v1/reservations/", body_for(lab), **KEY)
    assert status == 409
    assert {r["code"] for r in refused["reasons"]} == {"resource_booked"}
    Reservation.objects.all().delete()  # the laptop is free now; the key still answers as the first time
    status, again, response = desk.call("post", "/api/v1/reservations/", body_for(lab), **KEY)
    assert (status, again, response["Idempotent-Replayed"]) == (409, refused, "true")
    assert response["Content-Type"] == "application/problem+json"
    assert Reservation.objects.count() == 0

    # A server error keeps nothing: the retry with the same key runs the action.
    broken = Client(raise_request_exception=False)
    calls: list[int] = []
    real = booking.create_reservation

    def fails_once(**kwargs: Any) -> Reservation:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(booking, "create_reservation", fails_once)
    retry = {"Idempotency-Key": "after-a-crash"}
    headers = {**desk.auth, "HTTP_IDEMPOTENCY_KEY": retry["Idempotency-Key"]}
    response = broken.post("/api/v1/reservations/", body_for(lab), content_type="application/json", **headers)
    assert response.status_code == 500
    assert not IdempotencyKey.objects.filter(key="after-a-crash").exists()
    status, made, response = desk.call("post", "/api/v1/reservations/", body_for(lab), **retry)
    assert status == 201, made
    assert "Idempotent-Replayed" not in response
    assert Reservation.objects.count() == 1


@pytest.mark.django_db
def test_a_permission_refusal_is_not_kept_so_the_retry_acts_once_allowed(lab: SimpleNamespace) -> None:
    from patronage.libraries.models import Role

    clerk = api_for(lab.library, [Permission.VIEW_PATRONS], username="clerk")
    url = f"/api/v1/patrons/{lab.patron.pk}/fees/"
    status, body, _ = clerk.call("post", url, {"amount": "2.00"}, **KEY)
    assert (status, body["code"]) == (403, "permission_denied")
    assert IdempotencyKey.objects.count() == 0
    Role.objects.filter(name="role-clerk").update(permissions=sorted(str(p) for p in DESK))
    status, body, response = clerk.call("post", url, {"amount": "2.00"}, **KEY)
    assert status == 201, body
    assert "Idempotent-Replayed" not in response
    assert Fee.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key", ["", "x" * 256, "clé-😀", "tab\there", "   "], ids=["empty", "long", "utf8", "tab", "blank"]
)
def test_a_bad_key_is_a_field_error_on_the_header(lab: SimpleNamespace, key: str) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    status, body, _ = desk.call("post", "/api/v1/reservations/", body_for(lab), **{"Idempotency-Key": key})
    assert status == 400
    assert "printable ASCII" in body["errors"]["Idempotency-Key"][0]
    assert Reservation.objects.count() == 0


@pytest.mark.django_db
def test_without_the_header_each_request_acts(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    url = f"/api/v1/patrons/{lab.patron.pk}/fees/"
    assert [desk.call("post", url, {"amount": "2.00"})[0] for _ in range(2)] == [201, 201]
    assert Fee.objects.count() == 2
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_keys_expire_after_24_hours_and_are_purged(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    url = f"/api/v1/patrons/{lab.patron.pk}/fees/"
    assert desk.call("post", url, {"amount": "2.00"}, **KEY)[0] == 201
    with clock.frozen(NOW + dt.timedelta(hours=23, minutes=59)):
        assert desk.call("post", url, {"amount": "2.00"}, **KEY)[2]["Idempotent-Replayed"] == "true"
        assert idempotency.purge_expired() == 0
    with clock.frozen(NOW + dt.timedelta(hours=25)):
        status, _, response = desk.call("post", url, {"amount": "2.00"}, **KEY)
        assert status == 201
        assert "Idempotent-Replayed" not in response
        assert Fee.objects.count() == 2
    with clock.frozen(NOW + dt.timedelta(hours=50)):
        assert idempotency.purge_expired() == 1
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_walk_up_check_in_and_acting_steps_replay(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    walk_up = {"patron": lab.patron.pk, "center": lab.center.pk, "ends_at": "2027-05-03T16:00", "scanned": ["LAP-1"]}
    status, made, _ = desk.call("post", "/api/v1/checkouts/", walk_up, **{"Idempotency-Key": "walk-1"})
    assert status == 201, made
    status, again, response = desk.call("post", "/api/v1/checkouts/", walk_up, **{"Idempotency-Key": "walk-1"})
    assert (status, again["id"], response["Idempotent-Replayed"]) == (201, made["id"], "true")
    assert Checkout.objects.count() == 1
    url = f"/api/v1/checkouts/{made['id']}/checkin/"
    status, back, _ = desk.call("post", url, {}, **{"Idempotency-Key": "in-1"})
    assert status == 200, back
    # Without the key a second check-in is refused; with it the client gets its first answer.
    status, again, response = desk.call("post", url, {}, **{"Idempotency-Key": "in-1"})
    assert (status, again, response["Idempotent-Replayed"]) == (200, back, "true")


@pytest.mark.django_db
def test_payments_keep_their_own_key(lab: SimpleNamespace) -> None:
    fines.add_fee(actor=SYSTEM, patron=lab.patron, amount="4.00")
    desk = api_for(lab.library, DESK, username="desk")
    url = f"/api/v1/patrons/{lab.patron.pk}/payments/"
    status, first, response = desk.call("post", url, {"amount": "1.00", "method": "cash"}, **KEY)
    assert status == 201
    status, again, response = desk.call("post", url, {"amount": "1.00", "method": "cash"}, **KEY)
    assert (status, again["id"]) == (200, first["id"])  # as before: 200 with the first payment
    assert "Idempotent-Replayed" not in response
    assert Payment.objects.count() == 1
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_the_schema_declares_the_header_on_acting_operations() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        op["operationId"]: op for path in schema["paths"].values() for op in path.values() if isinstance(op, dict)
    }

    def headers(name: str) -> set[str]:
        return {p["name"] for p in operations[name].get("parameters", []) if p["in"] == "header"}

    for name in (
        "reservations_create", "reservation_series_create", "reservations_approve", "reservations_reject",
        "reservations_cancel", "reservations_cancel_series", "checkouts_walk_up", "reservations_check_out",
        "checkouts_check_in", "checkouts_copy", "groups_member_move", "patrons_clone", "tickets_comment",
        "authorizations_grant", "patrons_block", "patrons_fee_add", "patrons_fee_waive", "patrons_create",
    ):  # fmt: skip
        assert "Idempotency-Key" in headers(name), name
    assert "Idempotency-Key" not in headers("reservations_list")
    assert "Idempotency-Key" not in headers("reservations_update")


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_parallel_requests_with_one_key_book_once() -> None:
    workers = 6
    with clock.frozen(NOW):
        library = make_library("race", name="Race library")
        center = make_center(library, "lab")
        laptops = make_type(library, "Laptops", centers=[center])
        for number in range(3):
            make_resource(library, laptops, center, identifier=f"LAP-{number}")
        patron = make_patron(library)
        desk = api_for(library, DESK, username="racer")
        # "One of this type" with spare units: without the key every request would book one.
        body = {
            "patron": patron.pk, "center": center.pk, "starts_at": "2027-05-04T10:00", "ends_at": "2027-05-04T12:00",
            "lines": [{"resource_type": laptops.pk}],
        }  # fmt: skip
        clients = [Api("") for _ in range(workers)]
        for client in clients:
            client.auth = dict(desk.auth)

        def send(index: int) -> tuple[int, Any, str]:
            status, data, response = clients[index].call("post", "/api/v1/reservations/", body, **KEY)
            return (status, data, response.get("Idempotent-Replayed", ""))

        answers, errors = split(at_once(send, workers))
    assert not errors, errors
    assert len(answers) == workers
    assert {status for status, _, _ in answers} == {201}, answers
    assert len({data["id"] for _, data, _ in answers}) == 1
    assert sorted(replayed for _, _, replayed in answers) == [""] + ["true"] * (workers - 1)
    assert Reservation.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
    assert connection.vendor in {"sqlite", "postgresql"}


@pytest.mark.django_db
def test_the_worker_clock_queues_the_purge_and_it_deletes_old_keys(lab: SimpleNamespace) -> None:
    from django_tasks_db.models import DBTaskResult

    from patronage.api.tasks import purge_idempotency_keys
    from patronage.ops import clock as worker_clock

    desk = api_for(lab.library, DESK, username="desk")
    assert desk.call("post", f"/api/v1/patrons/{lab.patron.pk}/fees/", {"amount": "2.00"}, **KEY)[0] == 201
    assert "purge_idempotency_keys" in worker_clock.enqueue_periodic_jobs()
    assert DBTaskResult.objects.filter(task_path="patronage.api.tasks.purge_idempotency_keys").count() == 1
    assert purge_idempotency_keys.call() == 0
    with clock.frozen(NOW + dt.timedelta(days=2)):
        assert purge_idempotency_keys.call() == 1
