from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from patronage.core.errors import FieldError, ValidationFailed
from patronage.patrons import services
from patronage.patrons.models import Barcode, Patron
from patronage.standing.rules import Action
from patronage.standing.services import decide
from tests.factories import SYSTEM, make_library, make_patron

pytestmark = pytest.mark.django_db


def test_bad_input_is_refused_field_by_field_and_nothing_is_written() -> None:
    library = make_library()
    with pytest.raises(ValidationFailed) as refused:
        make_patron(
            library,
            first_name="x" * 10_000,
            primary_email="not-an-email",
            patron_type="nosuchtype",
            phones={"mobile": "12"},
        )
    errors = refused.value.errors
    assert set(errors) == {"first_name", "primary_email", "patron_type", "phone_mobile"}
    assert "at most 150" in errors["first_name"][0]
    assert "nosuchtype" in errors["patron_type"][0]
    assert not Patron.objects.exists()


def test_phone_numbers_are_checked_for_the_library_country_and_stored_in_e164() -> None:
    library = make_library(country="NO")
    patron = make_patron(library, phones={"mobile": "412 34 567"})
    assert patron.phones.get().number == "+4741234567"
    with pytest.raises(ValidationFailed) as refused:
        make_patron(library, phones={"home": "555 0123"})
    assert "not a valid phone number for NO" in refused.value.errors["phone_home"][0]


def test_a_duplicate_barcode_is_refused_even_when_it_is_an_old_one() -> None:
    library = make_library()
    first = make_patron(library, barcode="21000000000001")
    services.issue_barcode(actor=SYSTEM, patron=first, number="21000000000002")
    with pytest.raises(ValidationFailed) as refused:
        make_patron(library, barcode="21000000000001")
    assert "already in use" in refused.value.errors["barcode"][0]


def test_the_same_barcode_may_exist_at_two_libraries() -> None:
    make_patron(make_library(), barcode="30000000000001")
    make_patron(make_library(), barcode="30000000000001")
    assert Barcode.objects.filter(number="30000000000001").count() == 2


def test_a_new_barcode_replaces_the_active_one_and_keeps_history() -> None:
    patron = make_patron(make_library(), barcode="21000000000011")
    services.issue_barcode(actor=SYSTEM, patron=patron, number="21000000000012")
    rows = list(patron.barcodes.values_list("number", "is_active"))
    assert rows == [("21000000000012", True), ("21000000000011", False)]
    assert patron.barcodes.get(number="21000000000011").replaced_at is not None


def test_the_database_allows_at_most_one_active_barcode() -> None:
    patron = make_patron(make_library(), barcode="21000000000021")
    old = patron.barcodes.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Barcode.objects.create(
            library_id=patron.library_id, patron=patron, number="21000000000022", is_active=True,
            issued_at=old.issued_at,
        )  # fmt: skip


def test_without_an_active_barcode_the_patron_cannot_check_out() -> None:
    patron = make_patron(make_library())
    services.deactivate_barcode(actor=SYSTEM, patron=patron)
    assert decide(patron, Action.CHECK_OUT).codes == ["no_active_barcode"]
    assert decide(patron, Action.RESERVE).allowed


def test_saving_one_section_changes_only_that_section() -> None:
    patron = make_patron(make_library(), primary_email="a@example.org")
    services.update_section(actor=SYSTEM, patron=patron, section="identity", data={"first_name": "Grace",
                            "last_name": "Hopper", "birth_date": "1906-12-09", "person_id": "P1"})  # fmt: skip
    patron.refresh_from_db()
    assert (patron.first_name, patron.primary_email, str(patron.birth_date)) == ("Grace", "a@example.org", "1906-12-09")


def test_person_id_is_unique_within_a_library() -> None:
    library = make_library()
    make_patron(library, person_id="E-1")
    other = make_patron(library)
    with pytest.raises(FieldError, match="Person-ID"):
        services.update_section(actor=SYSTEM, patron=other, section="identity",
                                data={"first_name": "A", "last_name": "B", "person_id": "E-1"})  # fmt: skip


def test_markup_in_names_is_stored_as_typed() -> None:
    patron = make_patron(make_library(), first_name="<script>alert(1)</script>")
    assert patron.first_name == "<script>alert(1)</script>"
