from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patronage.blocks import services as blocks
from patronage.fines import services as fines
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_patron

from .conftest import StaffClient

pytestmark = pytest.mark.django_db
LIST = reverse("staff:patron-list")


def names(html: str) -> list[str]:
    return re.findall(r'<a href="/staff/patrons/\d+/">([^<]+)</a>', html)


@pytest.fixture
def people(library: Library, other_library: Library) -> dict[str, Patron]:
    return {
        "hopper": make_patron(library, first_name="Grace", last_name="Hopper", person_id="P-100"),
        "lovelace": make_patron(
            library,
            first_name="Ada",
            last_name="Lovelace",
            primary_email="Ada.Lovelace@Example.org",
            phones={"mobile": "+1 202 555 0143"},
        ),
        "hoppe": make_patron(other_library, first_name="Other", last_name="Hoppe"),
    }


def test_search_by_name_prefix_shows_only_this_librarys_patrons(
    staff_client: StaffClient, people: dict[str, Patron]
) -> None:
    response = staff_client([Permission.VIEW_PATRONS]).get(LIST, {"q": "hop"})
    assert response.status_code == 200
    assert names(response.content.decode()) == ["Hopper, Grace"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("ada.lovelace@example.org", "Lovelace, Ada"), ("202-555-0143", "Lovelace, Ada"), ("P-100", "Hopper, Grace")],
)
def test_search_by_email_phone_and_person_id(
    staff_client: StaffClient, people: dict[str, Patron], query: str, expected: str
) -> None:
    response = staff_client([Permission.VIEW_PATRONS]).get(LIST, {"q": query})
    assert names(response.content.decode()) == [expected]


def test_search_by_an_old_barcode_finds_the_patron(staff_client: StaffClient, people: dict[str, Patron]) -> None:
    patron = people["hopper"]
    old = patron.barcodes.get().number
    patron_services.issue_barcode(actor=SYSTEM, patron=patron, number="NEWCARD-0001")
    html = staff_client([Permission.VIEW_PATRONS]).get(LIST, {"q": old}).content.decode()
    assert names(html) == ["Hopper, Grace"]
    assert "NEWCARD-0001" in html  # the list shows the active barcode


def test_a_sort_off_the_list_gets_a_message_not_an_error(staff_client: StaffClient, people: dict[str, Patron]) -> None:
    response = staff_client([Permission.VIEW_PATRONS]).get(LIST, {"sort": "password"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "cannot be sorted by" in html
    assert names(html) == ["Hopper, Grace", "Lovelace, Ada"]


def test_sorting_by_name_descending(staff_client: StaffClient, people: dict[str, Patron]) -> None:
    html = staff_client([Permission.VIEW_PATRONS]).get(LIST, {"sort": "-name"}).content.decode()
    assert names(html) == ["Lovelace, Ada", "Hopper, Grace"]


def test_the_list_shows_a_short_standing_summary(staff_client: StaffClient, library: Library) -> None:
    patron = make_patron(library, last_name="Owing")
    fines.add_fee(actor=SYSTEM, patron=patron, amount="9.00")
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="Check ID")
    make_patron(library, last_name="Clear")
    html = staff_client([Permission.VIEW_PATRONS]).get(LIST).content.decode()
    assert "Blocked, Fines over limit" in html
    assert ">OK<" in html


def test_page_two_lists_the_rest(staff_client: StaffClient, library: Library) -> None:
    for n in range(30):
        make_patron(library, last_name=f"Person{n:02d}")
    client = staff_client([Permission.VIEW_PATRONS])
    first = names(client.get(LIST).content.decode())
    second = names(client.get(LIST, {"page": 2}).content.decode())
    assert len(first) == 25
    assert len(second) == 5
    assert not set(first) & set(second)
    assert second[-1].startswith("Person29")


def test_the_list_costs_the_same_number_of_queries_for_5_and_30_patrons(
    staff_client: StaffClient, library: Library
) -> None:
    client = staff_client([Permission.VIEW_PATRONS])

    def add(count: int) -> None:
        for _ in range(count):
            patron = make_patron(library)
            fines.add_fee(actor=SYSTEM, patron=patron, amount="1.00")
            blocks.block_patron(actor=SYSTEM, patron=patron, comment="x")

    add(5)
    client.get(LIST)  # warm up: the first request of a session may differ
    with CaptureQueriesContext(connection) as five:
        assert len(names(client.get(LIST).content.decode())) == 5
    add(25)
    with CaptureQueriesContext(connection) as thirty:
        assert len(names(client.get(LIST).content.decode())) == 25
    assert len(five.captured_queries) == len(thirty.captured_queries)


def test_the_list_needs_the_view_permission(staff_client: StaffClient, people: dict[str, Patron]) -> None:
    response = staff_client([Permission.TAKE_PAYMENTS]).get(LIST)
    assert response.status_code == 403
    assert "Patrons - View patrons" in response.content.decode()


def test_new_patron_form_creates_the_patron(staff_client: StaffClient, library: Library, patron: Patron) -> None:
    client = staff_client([Permission.VIEW_PATRONS, Permission.EDIT_PATRON])
    assert client.get(reverse("staff:patron-new")).status_code == 200
    response = client.post(
        reverse("staff:patron-new"),
        {
            "first_name": "Katherine", "last_name": "Johnson", "patron_type": patron.patron_type_id,
            "registered_branch": patron.registered_branch_id, "barcode": "KJ-0001", "phone_mobile": "+1 202 555 0188",
        },
    )  # fmt: skip
    created = Patron.objects.get(last_name="Johnson")
    assert response["Location"] == reverse("staff:patron-detail", kwargs={"pk": created.pk})
    assert created.barcodes.get().number == "KJ-0001"
    assert created.phones.get().number == "+12025550188"


def test_new_patron_form_shows_every_missing_field(staff_client: StaffClient, library: Library) -> None:
    client = staff_client([Permission.VIEW_PATRONS, Permission.EDIT_PATRON])
    response = client.post(reverse("staff:patron-new"), {"first_name": "", "last_name": "", "barcode": "x"})
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("first_name", "last_name", "patron_type", "registered_branch", "barcode"):
        assert f'id="f-{field}-error"' in html
        assert f'aria-describedby="f-{field}-error' in html
    assert not Patron.objects.filter(library=library).exists()


def test_new_patron_needs_the_edit_permission(staff_client: StaffClient, patron: Patron) -> None:
    client = staff_client([Permission.VIEW_PATRONS])
    assert "New patron" not in client.get(LIST).content.decode()
    response = client.post(
        reverse("staff:patron-new"),
        {
            "first_name": "K",
            "last_name": "J",
            "patron_type": patron.patron_type_id,
            "registered_branch": patron.registered_branch_id,
        },
    )
    assert response.status_code == 403
    assert not Patron.objects.filter(last_name="J").exists()
