from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from patronage.blocks.models import Block
from patronage.circulation.models import Checkout
from patronage.core.models import AuditEvent
from patronage.credentials import services as credentials
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.access import permissions_by_library
from patronage.libraries.models import Library
from patronage.libraries.permissions import DEFAULT_ROLES, Permission
from patronage.ops import demo
from patronage.patrons.models import Barcode, Patron, Phone
from patronage.reservations.models import Reservation
from patronage.resources.models import Resource
from patronage.standing.rules import Action, Condition
from patronage.standing.services import standing

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Library, Patron, Barcode, Fee, Payment, Waiver, Block, AuditEvent)
    }


def _patron_with_barcode(number: str) -> Patron:
    return Barcode.objects.select_related("patron").get(number=number).patron


def test_demo_loads_once_with_working_sign_ins_and_patrons_in_every_state() -> None:
    out = StringIO()
    call_command("demo", "--once", stdout=out)

    riverside = Library.objects.get(code="riverside")
    hillcrest = Library.objects.get(code="hillcrest")
    assert riverside.name == "Riverside Public Library"
    assert riverside.time_zone == "America/Chicago"
    assert 2 <= riverside.branches.count() <= 3
    assert 1 <= hillcrest.branches.count() <= 2
    assert 290 <= Patron.objects.filter(library=riverside).count() <= 310
    assert 55 <= Patron.objects.filter(library=hillcrest).count() <= 65
    for sign_in in demo.SIGN_INS:
        assert sign_in.username in out.getvalue()
        assert sign_in.password in out.getvalue()

    # The lending side and the portal: documented patron sign-ins work, with something to see.
    for patron_sign_in in demo.PORTAL_SIGN_INS:
        assert patron_sign_in.password in out.getvalue()
        library = Library.objects.get(code=patron_sign_in.library)
        signed_in = credentials.authenticate(library, patron_sign_in.identifier, patron_sign_in.password, None)
        assert Reservation.objects.filter(patron=signed_in).exists(), patron_sign_in.name
    maya = Patron.objects.get(person_id="R-DEMO-1")
    assert Checkout.objects.filter(patron=maya, completed_at__isnull=True).count() == 1
    assert Checkout.objects.filter(patron=maya, completed_at__isnull=False).count() == 3
    assert Reservation.objects.filter(patron=maya, series__isnull=False).count() == 6
    assert Resource.objects.filter(library=riverside).count() >= 10

    # Every documented sign-in works and holds the role it is documented with.
    for sign_in in demo.SIGN_INS:
        client = Client()
        assert client.login(username=sign_in.username, password=sign_in.password), sign_in.username
    users = get_user_model().objects
    assert permissions_by_library(users.get(username="desk")) == {riverside.pk: DEFAULT_ROLES["Desk staff"]}
    assert permissions_by_library(users.get(username="consortium")) == {
        riverside.pk: frozenset(Permission),
        hillcrest.pk: frozenset(Permission),
    }
    assert set(permissions_by_library(users.get(username="hillcrest"))) == {hillcrest.pk}

    # The showcase patrons are in the states docs/demo.md promises.
    over_limit = _patron_with_barcode("21001000000001")
    assert over_limit.first_name == "Zoë"
    assert Condition.FINES_OVER_LIMIT in standing(over_limit).codes
    assert not standing(over_limit).decision(Action.CHECK_OUT).allowed
    assert standing(_patron_with_barcode("21001000000002")).is_clear  # partly paid, under the limit
    assert standing(_patron_with_barcode("21001000000003")).codes == [Condition.BLOCKED_BY_STAFF]
    assert standing(_patron_with_barcode("21001000000004")).codes == [Condition.RECORD_EXPIRED]
    replaced = _patron_with_barcode("21001000000005")
    assert replaced.barcodes.count() == 2
    assert replaced.barcodes.filter(is_active=True).count() == 1
    assert Condition.RECORD_INACTIVE in standing(_patron_with_barcode("21001000000006")).codes
    assert Condition.NO_ACTIVE_BARCODE in standing(_patron_with_barcode("21001000000010")).codes
    twins = Patron.objects.filter(library=riverside, first_name="John", last_name="Smith", birth_date="1984-07-19")
    assert twins.count() == 2

    # A spread of states across the crowd, and names beyond ASCII.
    assert Payment.objects.count() >= 10
    assert Waiver.objects.count() >= 5
    assert Block.objects.count() >= 5
    assert Barcode.objects.filter(is_active=False).count() >= 20
    assert Patron.objects.filter(status=Patron.Status.INACTIVE).exists()
    assert any(not p.last_name.isascii() for p in Patron.objects.all())
    assert Patron.objects.filter(last_name__contains="-").exists()
    assert all(p.number.startswith("+1") for p in Phone.objects.all())

    # Loading again with --once changes nothing.
    before = _counts()
    again = StringIO()
    call_command("demo", "--once", stdout=again)
    assert "already there" in again.getvalue()
    assert _counts() == before


def test_demo_without_once_refuses_to_load_twice() -> None:
    Library.objects.create(code="riverside", name="Riverside Public Library")
    with pytest.raises(CommandError, match="not loaded twice"):
        call_command("demo", stdout=StringIO())
    assert Library.objects.count() == 1
