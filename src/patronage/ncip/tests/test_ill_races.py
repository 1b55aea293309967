"""Interlibrary-loan steps that meet: two NCIP calls for the same item at the same moment, or one step whose
item changed between its first read and its transaction. Whatever the order, each call gets a response or a
standard Problem (never a 500), and the item, its reservation and its checkout agree afterwards.

The races run in real threads against committed data (``transaction=True``); on SQLite the write lock makes
the threads take turns, so the tests check what must hold for every order, not one particular order. The
interleaving tests put the other step exactly between a call's first read and its transaction, the order a
race reaches only sometimes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from patronage.circulation.models import Checkout
from patronage.core.errors import Conflict, DomainError, FieldError, NotFound
from patronage.libraries.models import Library
from patronage.ncip import services
from patronage.patrons.models import Patron
from patronage.reservations.models import Reservation
from patronage.reservations.rules import State
from patronage.resources.models import Resource
from patronage.resourcesharing import ill_items
from patronage.resourcesharing.models import IllItem, ProtocolClient
from tests.concurrency import at_once
from tests.factories import make_patron

from .conftest import basic, find, post, text, valid
from .test_items import PATRON, _accept, _cancel, _check_in, _check_out

ROUNDS = 5  # races per test: each round is a new item, so the threads meet in more than one order


@pytest.fixture
def patron(library: Library) -> Patron:
    return make_patron(library, barcode=PATRON, person_id="P-7")


def _problem_type(content: bytes) -> str:
    return text(valid(content), "//n:Problem/n:ProblemType")


def _answers(bodies: list[str], auth: str) -> list[tuple[int, bytes]]:
    """POST each body in its own thread, all released together; (status, content) in the order given."""

    def send(index: int) -> tuple[int, bytes]:
        response = post(bodies[index], auth)
        return response.status_code, response.content

    outcomes = at_once(send, len(bodies))
    raised = [o for o in outcomes if isinstance(o, Exception)]
    assert not raised, raised  # the test client re-raises what a view lets escape: that would be a 500
    return [o for o in outcomes if not isinstance(o, Exception)]


def _assert_agrees(item: IllItem) -> None:
    """The item's state, its reservation and its checkout tell the same story."""
    reservation = Reservation.objects.get(pk=item.reservation_id)
    resource = Resource.objects.get(pk=item.resource_id)
    checkouts = Checkout.objects.filter(reservation=reservation)
    if item.state == IllItem.State.ACCEPTED:
        assert reservation.state == State.RESERVED
        assert item.checkout_id is None
        assert not checkouts.exists()
        assert resource.out_of_service_from is None
    elif item.state == IllItem.State.CHECKED_OUT:
        assert reservation.state == State.CHECKED_OUT
        assert list(checkouts.values_list("pk", flat=True)) == [item.checkout_id]
        assert checkouts.get().completed_at is None
        assert resource.out_of_service_from is None
    elif item.state == IllItem.State.CANCELLED:
        assert reservation.state == State.CANCELLED
        assert item.checkout_id is None
        assert not checkouts.exists()
        assert resource.out_of_service_from is not None
    else:
        assert item.state == IllItem.State.CHECKED_IN
        if item.checkout_id is None:
            assert reservation.state == State.CANCELLED
            assert not checkouts.exists()
        else:
            assert list(checkouts.values_list("pk", flat=True)) == [item.checkout_id]
            assert checkouts.get().completed_at is not None
        assert resource.out_of_service_from is not None


def _accepted(auth: str, name: str) -> IllItem:
    doc = valid(post(_accept(request_id=name, item=name), auth).content)
    assert not find(doc, "//n:Problem")
    return IllItem.objects.get(request_id=name)


# --- real races ----------------------------------------------------------------------------------


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_cancel_and_check_out_at_once_exactly_one_wins(patron: Patron, reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    for round_ in range(ROUNDS):
        name = f"ILL-RACE-{round_}"
        item = _accepted(auth, name)
        (cancel_status, cancelled), (out_status, out) = _answers(
            [_cancel(request_id=name), _check_out(item=name)], auth
        )
        assert cancel_status == out_status == 200
        cancel_problem, out_problem = _problem_type(cancelled), _problem_type(out)
        item.refresh_from_db()
        _assert_agrees(item)
        if item.state == IllItem.State.CANCELLED:
            assert cancel_problem == ""
            assert out_problem == "Resource Cannot Be Provided"
        else:
            assert item.state == IllItem.State.CHECKED_OUT
            assert out_problem == ""
            assert text(valid(out), "//n:CheckOutItemResponse/n:ItemId/n:ItemIdentifierValue") == name
            assert cancel_problem == "Element Rule Violated"
    assert connection.vendor in {"sqlite", "postgresql"}


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_check_in_and_check_out_at_once_leave_the_item_back_and_nothing_out(
    patron: Patron, reshare: tuple[ProtocolClient, str]
) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    for round_ in range(ROUNDS):
        name = f"ILL-BACK-{round_}"
        item = _accepted(auth, name)
        (in_status, checked_in), (out_status, out) = _answers([_check_in(item=name), _check_out(item=name)], auth)
        assert in_status == out_status == 200
        assert _problem_type(checked_in) == ""
        item.refresh_from_db()
        assert item.state == IllItem.State.CHECKED_IN
        _assert_agrees(item)
        # Checked out first and then in, or checked in unused first and the checkout refused.
        assert _problem_type(out) == ("" if item.checkout_id is not None else "Resource Cannot Be Provided")
        assert not Checkout.objects.filter(completed_at=None).exists()


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step", ["check out", "check in", "cancel"])
def test_the_same_step_sent_several_times_at_once_is_done_once_and_answered_alike(
    step: str, patron: Patron, reshare: tuple[ProtocolClient, str]
) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    name = "ILL-REPEAT"
    item = _accepted(auth, name)
    bodies: dict[str, Callable[[str], str]] = {"check out": _check_out, "check in": _check_in, "cancel": _cancel}
    body = bodies[step]
    answers = _answers([body(name) for _ in range(4)], auth)
    assert {status for status, _ in answers} == {200}
    assert {_problem_type(content) for _, content in answers} == {""}
    if step == "check out":
        due = {text(valid(content), "//n:CheckOutItemResponse/n:DateDue") for _, content in answers}
        assert len(due) == 1  # every repeat answers the one checkout
    item.refresh_from_db()
    assert item.state == {"check out": "checked_out", "check in": "checked_in", "cancel": "cancelled"}[step]
    _assert_agrees(item)
    assert Checkout.objects.count() == (1 if step == "check out" else 0)


# --- the other step between a call's first read and its transaction ------------------------------


@pytest.fixture
def between(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], Any]], None]]:
    """``between(step)``: the next NCIP item step runs ``step`` after it has first read the item and before
    its transaction (``actor_for`` is called in that gap), as a concurrent call that commits then would."""
    real = ill_items.actor_for
    pending: list[Callable[[], Any]] = []

    def actor_for(client: ProtocolClient, address: str | None) -> Any:
        if pending:
            pending.pop()()
        return real(client, address)

    monkeypatch.setattr(ill_items, "actor_for", actor_for)
    yield pending.append
    assert not pending, "the step never ran"


@pytest.mark.django_db
def test_a_cancel_that_meets_a_check_out_is_refused_not_a_500(
    patron: Patron, reshare: tuple[ProtocolClient, str], between: Callable[[Callable[[], Any]], None]
) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    item = _accepted(auth, "ILL-1")
    between(lambda: ill_items.check_out_item(client, item_id="ILL-1"))
    response = post(_cancel(request_id="ILL-1"), auth)
    assert response.status_code == 200
    assert _problem_type(response.content) == "Element Rule Violated"
    item.refresh_from_db()
    assert item.state == IllItem.State.CHECKED_OUT
    _assert_agrees(item)


@pytest.mark.django_db
def test_a_check_in_that_meets_a_check_out_checks_the_checkout_in(
    patron: Patron, reshare: tuple[ProtocolClient, str], between: Callable[[Callable[[], Any]], None]
) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    item = _accepted(auth, "ILL-2")
    between(lambda: ill_items.check_out_item(client, item_id="ILL-2"))
    response = post(_check_in(item="ILL-2"), auth)
    assert response.status_code == 200
    assert _problem_type(response.content) == ""
    item.refresh_from_db()
    assert item.state == IllItem.State.CHECKED_IN
    assert item.checkout_id is not None
    _assert_agrees(item)


@pytest.mark.django_db
@pytest.mark.parametrize("first", ["cancel", "check in"])
def test_a_check_out_that_meets_a_cancel_or_check_in_says_the_item_is_not_available(
    first: str, patron: Patron, reshare: tuple[ProtocolClient, str], between: Callable[[Callable[[], Any]], None]
) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    item = _accepted(auth, "ILL-3")
    if first == "cancel":
        between(lambda: ill_items.cancel_request(client, request_agency="RESHARE", request_id="ILL-3"))
    else:
        between(lambda: ill_items.check_in_item(client, item_id="ILL-3"))
    with pytest.raises(ill_items.IllRefused) as refused:
        ill_items.check_out_item(client, item_id="ILL-3")
    assert refused.value.code == "item_not_available"
    between(lambda: None)  # and over NCIP, the standard Problem
    assert _problem_type(post(_check_out(item="ILL-3"), auth).content) == "Resource Cannot Be Provided"
    item.refresh_from_db()
    assert item.state == (IllItem.State.CANCELLED if first == "cancel" else IllItem.State.CHECKED_IN)
    _assert_agrees(item)


# --- a domain error that escapes a service -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Conflict("A checked out reservation cannot be cancelled.", code="transition_not_allowed"),
         "Temporary Processing Failure"),
        (NotFound("No such thing."), "Temporary Processing Failure"),
        (FieldError("scanned", "Not out in this checkout: X."), "Element Rule Violated"),
        (ill_items.IllRefused("cannot_cancel", "Checked out already.", value="R-1"), "Element Rule Violated"),
    ],
    ids=["conflict", "not found", "field error", "ill refusal"],
)  # fmt: skip
def test_a_domain_error_escaping_a_service_is_an_ncip_problem_and_logged_without_the_body(
    error: DomainError,
    expected: str,
    patron: Patron,
    reshare: tuple[ProtocolClient, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, secret = reshare

    def escapes(*_: object) -> Any:
        raise error

    monkeypatch.setitem(services.HANDLERS, "CheckInItem", escapes)
    with caplog.at_level(logging.INFO, logger="patronage.ncip"):
        response = post(_check_in(item="SECRET-ITEM-42"), basic(client.login, secret))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    doc = valid(response.content)
    assert text(doc, "/n:NCIPMessage/n:Problem/n:ProblemType") == expected
    assert error.message in text(doc, "//n:Problem/n:ProblemDetail")
    logged = [r for r in caplog.records if r.name == "patronage.ncip" and error.code in r.getMessage()]
    assert logged
    assert all(r.levelno in (logging.INFO, logging.WARNING) for r in logged)
    assert not any("SECRET-ITEM-42" in r.getMessage() for r in caplog.records)
