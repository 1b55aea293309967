"""The library-wide view: which patrons fail the interlibrary-loan checklist, grouped by cause.

Counted with one grouped query per cause over the patrons the staff member may see, never patron by patron.
A patron failing for several causes is counted under each. Causes that depend on the identifier a
requester sends (an old card) cannot be counted ahead and are not listed; nor are the late-resources and
overdue-invoice facts, which belong to circulation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Lower

from patronage.blocks.models import Block
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.models import Library
from patronage.patrons.models import Barcode, Patron, PatronType
from patronage.standing.rules import Condition

from .eligibility import authorised_types

CAUSES: dict[str, str] = {
    Condition.ILL_NOT_CONFIGURED.value: "ILL is not configured (no patron type is authorised)",
    Condition.PATRON_TYPE_NOT_AUTHORIZED_FOR_ILL.value: "type not authorised for interlibrary loan",
    Condition.RECORD_INACTIVE.value: "record inactive",
    Condition.RECORD_EXPIRED.value: "record expired",
    Condition.NO_ACTIVE_BARCODE.value: "no active barcode",
    Condition.BLOCKED_BY_STAFF.value: "blocked by staff",
    Condition.FINES_OVER_LIMIT.value: "fines over the limit",
    Condition.POSSIBLE_DUPLICATE_ACCOUNT.value: "possible duplicate account (a warning, not a refusal)",
}


@dataclass(frozen=True)
class Group:
    cause: str
    label: str
    count: int
    patron_type: PatronType | None = None

    @property
    def query(self) -> dict[str, str]:
        """The filter of the patron list showing this group."""
        out = {"cause": self.cause}
        if self.patron_type is not None:
            out["type_id"] = str(self.patron_type.pk)
        return out


_MONEY: DecimalField[Decimal, Decimal] = DecimalField(max_digits=14, decimal_places=2)


def _sum(model: Any) -> Coalesce:
    total = model.objects.filter(patron_id=OuterRef("pk")).values("patron_id").annotate(s=Sum("amount")).values("s")
    return Coalesce(Subquery(total, output_field=_MONEY), Value(Decimal("0.00")), output_field=_MONEY)


def _duplicate_filter(patrons: QuerySet[Patron]) -> Q:
    """Patrons sharing name and birth date, or an e-mail address, with another patron of the same set."""
    by_name = (
        patrons.filter(birth_date__isnull=False)
        .annotate(fl=Lower("first_name"), ll=Lower("last_name"))
        .values("fl", "ll", "birth_date")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    by_email = (
        patrons.exclude(primary_email="")
        .annotate(el=Lower("primary_email"))
        .values("el")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values("el")
    )
    name_match = Exists(
        by_name.filter(
            fl=Lower(OuterRef("first_name")), ll=Lower(OuterRef("last_name")), birth_date=OuterRef("birth_date")
        )
    )
    return Q(name_match) | Q(email_lower__in=Subquery(by_email))


def matching(patrons: QuerySet[Patron], library: Library, cause: str, *, type_id: int | None = None,
             now: dt.datetime) -> QuerySet[Patron]:  # fmt: skip
    """The patrons of ``patrons`` (already limited to what the staff member may see) failing for ``cause``."""
    today = now.astimezone(ZoneInfo(library.time_zone)).date()
    patrons = patrons.filter(library=library)
    if type_id is not None:
        patrons = patrons.filter(patron_type_id=type_id)
    if cause == Condition.ILL_NOT_CONFIGURED.value:
        return patrons if not authorised_types(library.pk) else patrons.none()
    if cause == Condition.PATRON_TYPE_NOT_AUTHORIZED_FOR_ILL.value:
        return patrons.filter(patron_type__may_use_ill=False) if authorised_types(library.pk) else patrons.none()
    if cause == Condition.RECORD_INACTIVE.value:
        return patrons.filter(status=Patron.Status.INACTIVE)
    if cause == Condition.RECORD_EXPIRED.value:
        return patrons.filter(expires_on__lt=today)
    if cause == Condition.NO_ACTIVE_BARCODE.value:
        return patrons.filter(~Exists(Barcode.objects.filter(patron_id=OuterRef("pk"), is_active=True)))
    if cause == Condition.BLOCKED_BY_STAFF.value:
        in_force = Block.objects.filter(patron_id=OuterRef("pk"), lifted_at__isnull=True).filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=now)
        )
        return patrons.filter(Exists(in_force))
    if cause == Condition.FINES_OVER_LIMIT.value:
        return patrons.annotate(owed=_sum(Fee) - _sum(Payment) - _sum(Waiver)).filter(
            owed__gt=F("patron_type__fine_limit")
        )
    if cause == Condition.POSSIBLE_DUPLICATE_ACCOUNT.value:
        whole = Patron.objects.filter(library=library)
        return patrons.annotate(email_lower=Lower("primary_email")).filter(_duplicate_filter(whole))
    return patrons.none()


def groups(patrons: QuerySet[Patron], library: Library, *, now: dt.datetime) -> list[Group]:
    """Every cause with its count (types not authorised: one group per type), largest first."""
    found: list[Group] = []
    if authorised_types(library.pk):
        per_type = (
            patrons.filter(library=library, patron_type__may_use_ill=False)
            .values("patron_type_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        counts = {row["patron_type_id"]: row["n"] for row in per_type}
        for patron_type in PatronType.objects.filter(pk__in=counts):
            cause = Condition.PATRON_TYPE_NOT_AUTHORIZED_FOR_ILL.value
            found.append(Group(cause, CAUSES[cause], counts[patron_type.pk], patron_type))
    else:
        cause = Condition.ILL_NOT_CONFIGURED.value
        found.append(Group(cause, CAUSES[cause], patrons.filter(library=library).count()))
    for cause in (
        Condition.RECORD_INACTIVE,
        Condition.RECORD_EXPIRED,
        Condition.NO_ACTIVE_BARCODE,
        Condition.BLOCKED_BY_STAFF,
        Condition.FINES_OVER_LIMIT,
        Condition.POSSIBLE_DUPLICATE_ACCOUNT,
    ):
        n = matching(patrons, library, cause.value, now=now).count()
        found.append(Group(cause.value, CAUSES[cause.value], n))
    return sorted((g for g in found if g.count), key=lambda g: -g.count)
