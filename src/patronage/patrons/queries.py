"""Shared reads of patron records: the staff search used by the pages and the API."""

from __future__ import annotations

import re

import phonenumbers
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import Exact

from patronage.core.errors import FieldError

from .models import Barcode, Patron, Phone

# Sorting is allowed on these keys only; each maps to the columns it orders by.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("last_name_lower", "first_name_lower", "id"),
    "-name": ("-last_name_lower", "-first_name_lower", "-id"),
    "expires_on": ("expires_on", "id"),
    "-expires_on": ("-expires_on", "-id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
}
DEFAULT_SORT = "name"


def search_patrons(
    scope: QuerySet[Patron], query: str, *, region: str = "US", sort: str = DEFAULT_SORT
) -> QuerySet[Patron]:
    """Patrons in ``scope`` matching ``query`` by barcode (current or old), Person-ID, e-mail,
    phone or name prefix ("smi", "smith, jo", "jo smith").

    ``scope`` is what the access gatekeeper allows; this never widens it.
    """
    if sort not in SORTS:
        raise FieldError("sort", f"Sort by one of: {', '.join(SORTS)}.")
    text = " ".join(query.split())[:200]
    patrons = scope.annotate(last_name_lower=Lower("last_name"), first_name_lower=Lower("first_name"))
    if text:
        patrons = patrons.filter(_match(scope, text, region))
    return patrons.select_related("patron_type", "library").order_by(*SORTS[sort])


def _match(scope: QuerySet[Patron], text: str, region: str) -> Q:
    lowered = text.lower()
    # The barcode match is resolved first (one index lookup): as a subquery inside the OR below it would
    # stop PostgreSQL from combining the other branches' indexes, and every search would scan patrons.
    by_barcode = list(Barcode.objects.filter(number=text).values_list("patron_id", flat=True))
    condition = Q(pk__in=by_barcode) | Q(person_id=text)
    if "@" in text:
        # lower() = lower() rather than iexact (UPPER() = UPPER() on PostgreSQL, LIKE on SQLite), so the
        # lower(e-mail) indexes serve it on every database.
        return condition | Q(Exact(Lower("primary_email"), lowered)) | Q(Exact(Lower("alternate_email"), lowered))
    if re.fullmatch(r"[+\d][\d\s().-]{5,}", text):
        try:
            number = phonenumbers.parse(text, region)
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            condition |= Q(pk__in=Phone.objects.filter(number=e164).values("patron_id"))
        except phonenumbers.NumberParseException:
            pass
        return condition
    if "," in lowered:
        last, _, first = (part.strip() for part in lowered.partition(","))
        return condition | (Q(last_name_lower__startswith=last) & Q(first_name_lower__startswith=first))
    words = lowered.split(" ")
    if len(words) >= 2:
        first, last = words[0], " ".join(words[1:])
        return (
            condition
            | Q(last_name_lower__startswith=lowered)
            | (Q(first_name_lower__startswith=first) & Q(last_name_lower__startswith=last))
        )
    return condition | Q(last_name_lower__startswith=lowered) | Q(first_name_lower__startswith=lowered)
