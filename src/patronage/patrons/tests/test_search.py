"""The staff search and the barcode lookup: the same answers as the plain queries, in one statement."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import phonenumbers
import pytest
from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patronage.core.errors import PermissionDenied
from patronage.libraries.access import permissions_by_library
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.access import PatronNotFound, patron_by_barcode_for_staff, patrons_for_staff
from patronage.patrons.models import Barcode, Patron, Phone
from patronage.patrons.queries import SORTS, search_patrons
from tests.factories import actor, make_branch, make_library, make_patron, make_patron_type, make_staff

pytestmark = pytest.mark.django_db

LAST_NAMES = [
    "Williams", "Wilson", "Wilkins", "Willow", "Smith", "Smithers", "Jones", "Ab_c", "Abxc", "100%", "1000",
    "O'Brien", "Émond", "émond", "Van der Berg", "Young", "Zimmer",
]  # fmt: skip
FIRST_NAMES = ["Will", "Wilma", "John", "Jo", "Joanna", "Émile", "Ada", "Grace", "Smitty", "Van", "Yolanda"]


def reference_search(scope: QuerySet[Patron], query: str, *, region: str = "US", sort: str = "name") -> list[int]:
    """The search as it was written before it was tuned: one plain condition, no windows, no fences."""
    text = " ".join(query.split())[:200]
    patrons = scope.annotate(last_name_lower=Lower("last_name"), first_name_lower=Lower("first_name"))
    if text:
        lowered = text.lower()
        by_barcode = list(Barcode.objects.filter(number=text).values_list("patron_id", flat=True))
        condition = Q(pk__in=by_barcode) | Q(person_id=text)
        if "@" in text:
            condition |= Q(Exact(Lower("primary_email"), lowered)) | Q(Exact(Lower("alternate_email"), lowered))
        elif re.fullmatch(r"[+(\d][\d\s().-]{5,}", text):
            condition |= Q(pk__in=Phone.objects.filter(number=text).values("patron_id"))
            try:
                number = phonenumbers.parse(text, region)
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                condition |= Q(pk__in=Phone.objects.filter(number=e164).values("patron_id"))
            except phonenumbers.NumberParseException:
                pass
        elif "," in lowered:
            last, _, first = (part.strip() for part in lowered.partition(","))
            condition |= Q(last_name_lower__startswith=last) & Q(first_name_lower__startswith=first)
        elif len(words := lowered.split(" ")) >= 2:
            first, last = words[0], " ".join(words[1:])
            condition |= Q(last_name_lower__startswith=lowered) | (
                Q(first_name_lower__startswith=first) & Q(last_name_lower__startswith=last)
            )
        else:
            condition |= Q(last_name_lower__startswith=lowered) | Q(first_name_lower__startswith=lowered)
        patrons = patrons.filter(condition)
    return list(patrons.order_by(*SORTS[sort]).values_list("pk", flat=True))


def add_patrons(library: Library, count: int, *, offset: int = 0) -> list[Patron]:
    patron_type, branch = make_patron_type(library), make_branch(library)
    start = timezone.now()
    patrons = [
        Patron(
            library=library, patron_type=patron_type, registered_branch=branch,
            last_name=LAST_NAMES[(i * 5 + offset) % len(LAST_NAMES)], first_name=FIRST_NAMES[(i * 7) % len(FIRST_NAMES)],
            expires_on=dt.date(2027, 1, 1) + dt.timedelta(days=(i * 37) % 11),
            created_at=start - dt.timedelta(minutes=(i * 13) % 17), updated_at=start,
            status=Patron.Status.INACTIVE if i % 4 == 0 else Patron.Status.ACTIVE,
            person_id=f"P-{offset}-{i}", primary_email=f"p{offset}.{i}@Example.org",
        )
        for i in range(count)
    ]  # fmt: skip
    return Patron.objects.bulk_create(patrons)


@pytest.fixture
def scope() -> QuerySet[Patron]:
    """A desk member of two libraries, with enough patrons sharing prefixes to fill several pages."""
    first, second, elsewhere = make_library(), make_library(), make_library()
    mine = add_patrons(first, 150) + add_patrons(second, 40, offset=3)
    add_patrons(elsewhere, 60)
    # Exact matches that are also name prefixes: a barcode and a Person-ID equal to "wil".
    Barcode.objects.create(library=first, patron=mine[3], number="wil", issued_at=timezone.now())
    Patron.objects.filter(pk=mine[10].pk).update(person_id="wil")
    Phone.objects.create(patron=mine[20], number="+12025550143")
    staff = make_staff([first, second], [Permission.VIEW_PATRONS])
    return patrons_for_staff(actor(staff))


SEARCHES = [
    "wil", "WIL", "w", "Smith, jo", "jo smith", "van der", "wil,", ", wil", ",", "o'b", "ab_", "100%", "ém",
    "zz", "", "P-0-7", "p3.5@example.ORG", "202-555-0143", "  will   ", "yo",
]  # fmt: skip


@pytest.mark.parametrize("text", SEARCHES)
def test_every_page_is_what_the_plain_search_returns(scope: QuerySet[Patron], text: str) -> None:
    for sort in SORTS:
        found = search_patrons(scope, text, sort=sort)
        expected = reference_search(scope, text, sort=sort)
        assert [p.pk for p in found] == expected, sort
        assert found.count() == len(expected), sort
        for low, high in ((0, 25), (25, 50), (50, 75), (0, 10), (5, 7), (200, 225)):
            assert [p.pk for p in found[low:high]] == expected[low:high], (sort, low, high)


def test_a_page_takes_only_the_first_matches_of_each_name_prefix(scope: QuerySet[Patron]) -> None:
    with CaptureQueriesContext(connection) as captured:
        assert len(list(search_patrons(scope, "wil")[25:50])) == 25
    (statement,) = (q["sql"] for q in captured.captured_queries)
    # The page itself, and one subquery per alternative (last name, first name), each cut at its 50th row.
    assert len(re.findall(r"LIMIT 50\b", statement)) == 2
    assert len(re.findall(r"\bLIMIT\b", statement)) == 3


def test_a_filter_added_after_the_search_is_obeyed(scope: QuerySet[Patron]) -> None:
    found = search_patrons(scope, "wil")
    inactive = [p.pk for p in found if p.status == Patron.Status.INACTIVE]
    assert len(inactive) > 5
    assert [p.pk for p in found.filter(status=Patron.Status.INACTIVE)[:5]] == inactive[:5]
    assert [p.pk for p in found.order_by("-id")[:3]] == sorted((p.pk for p in found), reverse=True)[:3]
    assert [p.pk for p in found.reverse()[:3]] == [p.pk for p in found][::-1][:3]


@pytest.mark.parametrize("text", ["wil", "jo smith", "p0.5@example.org", "202 555 0143", "wil,"])
def test_a_search_is_one_statement(scope: QuerySet[Patron], text: str, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        page = list(search_patrons(scope, text)[:25])
    assert page


def test_barcode_lookup_is_one_statement_and_loads_what_the_detail_needs() -> None:
    library = make_library()
    patron = make_patron(library, barcode="21000000000077")
    viewer = make_staff(library, [Permission.VIEW_PATRONS])
    permissions_by_library(viewer)  # cached for the request, as the view's permission check leaves it
    with CaptureQueriesContext(connection) as captured:
        found = patron_by_barcode_for_staff(actor(viewer), library.pk, " 21000000000077 ")
        labels = (found.library.name, found.patron_type.fine_limit, found.registered_branch.name)
    assert len(captured.captured_queries) == 1
    loaded = Patron.objects.select_related("library", "patron_type", "registered_branch").get(pk=patron.pk)
    assert labels == (loaded.library.name, loaded.patron_type.fine_limit, loaded.registered_branch.name)
    for model_instance, expected in (
        (found, loaded), (found.library, loaded.library), (found.patron_type, loaded.patron_type),
        (found.registered_branch, loaded.registered_branch),
    ):  # fmt: skip
        for field in type(expected)._meta.concrete_fields:
            ours, theirs = getattr(model_instance, field.attname), getattr(expected, field.attname)
            assert (ours, type(ours)) == (theirs, type(theirs)), field.name
    assert found._state.db == loaded._state.db
    assert not found._state.adding


def test_barcode_lookup_answers_as_the_gatekeeper_does() -> None:
    library, other = make_library(), make_library()
    make_patron(library, barcode="21000000000081")
    make_patron(other, barcode="21000000000082")
    viewer = make_staff(library, [Permission.VIEW_PATRONS])
    member_without_permission = make_staff(library, [Permission.TAKE_PAYMENTS])
    member_of_nothing_here = make_staff(library, [])
    with pytest.raises(PatronNotFound):  # a barcode of another library, even with its number
        patron_by_barcode_for_staff(actor(viewer), library.pk, "21000000000082")
    with pytest.raises(PatronNotFound):  # a library the staff member does not belong to
        patron_by_barcode_for_staff(actor(viewer), other.pk, "21000000000082")
    with pytest.raises(PatronNotFound):
        patron_by_barcode_for_staff(actor(member_of_nothing_here), library.pk, "21000000000081")
    with pytest.raises(PermissionDenied, match="View patrons"):
        patron_by_barcode_for_staff(actor(member_without_permission), library.pk, "21000000000081")
    with pytest.raises(PatronNotFound):
        patron_by_barcode_for_staff(actor(None), library.pk, "21000000000081")


def test_a_phone_kept_as_typed_is_found_as_typed_and_one_in_e164_by_any_spelling() -> None:
    library = make_library()
    typed = make_patron(library)
    Phone.objects.create(patron=typed, kind="mobile", number="0049 30 1234567")  # validation was off
    parsed = make_patron(library, phones={"mobile": "+1 202 555 0143"})
    scope = Patron.objects.filter(library=library)
    assert reference_search(scope, "0049 30 1234567") == [typed.pk]
    assert list(search_patrons(scope, "0049 30 1234567").values_list("pk", flat=True)) == [typed.pk]
    assert list(search_patrons(scope, "(202) 555-0143").values_list("pk", flat=True)) == [parsed.pk]
