"""One-time form tokens: a creating form sent twice acts once and the second send shows what the first made."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.fines.models import Fee, Payment
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import NOW, make_center, make_resource, make_type
from tests.concurrency import at_once, split
from tests.factories import make_library, make_patron, make_staff

from .conftest import StaffClient

DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT]
MONEY = [Permission.VIEW_PATRONS, Permission.ADD_FEES, Permission.TAKE_PAYMENTS]
TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def lab(library: Library, patron: Patron) -> SimpleNamespace:
    center = make_center(library, "lab", name="Media lab")
    laptops = make_type(library, "Laptops", centers=[center])
    for number in (1, 2, 3):
        make_resource(library, laptops, center, identifier=f"LAP-{number}", name=f"Laptop {number}")
    return SimpleNamespace(center=center, laptops=laptops, patron=patron)


def token_of(response: Any, index: int = 0) -> str:
    assert response.status_code == 200
    found = TOKEN.findall(response.content.decode())
    assert found, "the form carries no one-time token"
    return str(found[index])


def barcode_of(patron: Patron) -> str:
    return patron.barcodes.get(is_active=True).number


@pytest.mark.django_db
def test_a_new_reservation_sent_twice_books_once(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client(DESK)
    address = reverse("staff:lending:reservation-new")
    # "One of this type" with spare units: a second send would book a second laptop.
    data = {
        "patron": str(lab.patron.pk), "center": str(lab.center.pk), "starts_at": "2027-05-04T10:00",
        "ends_at": "2027-05-04T12:00", "pickup_option": "desk", "lines.0.resource_type": str(lab.laptops.pk),
        "form_token": token_of(client.get(address)),
    }  # fmt: skip
    first = client.post(address, data)
    assert first.status_code == 302
    second = client.post(address, data, follow=True)
    assert second.redirect_chain[0][0] == first["Location"]
    assert "already sent and done" in second.content.decode()
    assert Reservation.objects.count() == 1
    # A new form gets a new token: the desk can still book a second one on purpose.
    data["form_token"] = token_of(client.get(address))
    assert client.post(address, data).status_code == 302
    assert Reservation.objects.count() == 2


@pytest.mark.django_db
def test_a_walk_up_sent_twice_checks_out_once(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client(DESK)
    address = reverse("staff:lending:walk-up", kwargs={"center_id": lab.center.pk})
    token = token_of(client.get(address))
    wrong = {"patron": "0000", "ends_at": "2027-05-03T16:00", "scanned": "LAP-1", "form_token": token}
    # A refused or incorrect send does not use the token up: the corrected form goes through.
    assert client.post(address, wrong).status_code == 400
    data = {**wrong, "patron": barcode_of(lab.patron)}
    first = client.post(address, data)
    assert first.status_code == 302
    second = client.post(address, data)
    assert (second.status_code, second["Location"]) == (302, first["Location"])
    assert Checkout.objects.count() == 1
    assert Reservation.objects.count() == 1


@pytest.mark.django_db
def test_a_fee_sent_twice_is_charged_once_and_payments_stay_single(staff_client: StaffClient, patron: Patron) -> None:
    client = staff_client(MONEY)
    page = client.get(reverse("staff:patron-debts", kwargs={"pk": patron.pk}))
    fee_token, pay_token = token_of(page, 0), token_of(page, 1)
    assert fee_token != pay_token
    fee = {"fee-amount": "2.50", "fee-kind": "damage", "fee-description": "Torn page", "form_token": fee_token}
    address = reverse("staff:patron-add-fee", kwargs={"pk": patron.pk})
    assert client.post(address, fee).status_code == 302
    again = client.post(address, fee, follow=True)
    assert "already sent and done" in again.content.decode()
    assert Fee.objects.filter(patron=patron).count() == 1
    key = re.search(r'name="pay-idempotency_key" value="([^"]+)"', page.content.decode())
    assert key is not None
    pay = {"pay-amount": "1.00", "pay-method": "cash", "pay-idempotency_key": key.group(1), "form_token": pay_token}
    address = reverse("staff:patron-take-payment", kwargs={"pk": patron.pk})
    assert client.post(address, pay).status_code == 302
    assert client.post(address, pay).status_code == 302
    assert Payment.objects.filter(patron=patron).count() == 1


@pytest.mark.django_db
def test_a_new_patron_and_a_block_sent_twice_act_once(staff_client: StaffClient, library: Library) -> None:
    from patronage.blocks.models import Block

    client = staff_client([Permission.VIEW_PATRONS, Permission.EDIT_PATRON, Permission.BLOCK_PATRON])
    address = reverse("staff:patron-new")
    patron = make_patron(library)
    person = {
        "first_name": "Katherine", "last_name": "Johnson", "patron_type": patron.patron_type_id,
        "registered_branch": patron.registered_branch_id, "form_token": token_of(client.get(address)),
    }  # fmt: skip
    first = client.post(address, person)
    assert first.status_code == 302
    assert client.post(address, person)["Location"] == first["Location"]
    assert Patron.objects.filter(last_name="Johnson").count() == 1
    block = reverse("staff:patron-block", kwargs={"pk": patron.pk})
    data = {"comment": "Lost books", "ends_at": "", "form_token": token_of(client.get(block))}
    assert client.post(block, data).status_code == 302
    assert "already sent and done" in client.post(block, data, follow=True).content.decode()
    assert Block.objects.filter(patron=patron).count() == 1


@pytest.mark.django_db
def test_a_post_without_a_token_acts_as_before(staff_client: StaffClient, patron: Patron) -> None:
    client = staff_client(MONEY)
    address = reverse("staff:patron-add-fee", kwargs={"pk": patron.pk})
    for _ in range(2):
        assert client.post(address, {"fee-amount": "1.00", "fee-kind": "other"}).status_code == 302
    assert Fee.objects.filter(patron=patron).count() == 2


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_double_click_sent_at_the_same_moment_charges_once() -> None:
    workers = 4
    with clock.frozen(NOW):
        library = make_library("race", name="Race library")
        patron = make_patron(library)
        user = make_staff(library, MONEY, username="racer")
        client = Client()
        client.force_login(user)
        token = token_of(client.get(reverse("staff:patron-debts", kwargs={"pk": patron.pk})))
        cookies = client.cookies
        address = reverse("staff:patron-add-fee", kwargs={"pk": patron.pk})
        data = {"fee-amount": "2.50", "fee-kind": "damage", "fee-description": "Torn", "form_token": token}
        senders = [Client() for _ in range(workers)]
        for sender in senders:
            sender.cookies = cookies

        def send(index: int) -> int:
            return senders[index].post(address, data).status_code

        statuses, errors = split(at_once(send, workers))
    assert not errors, errors
    assert statuses == [302] * workers
    assert Fee.objects.filter(patron=patron).count() == 1
    assert connection.vendor in {"sqlite", "postgresql"}
