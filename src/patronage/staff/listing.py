"""The standing column of the patron list, for a whole page in the same one query.

``standing.services.standing`` asks the database once per patron; on a list that would be one query
per row. Here the same facts are annotated onto the page's query and handed to the pure rules, so
the list and the details window can never disagree about what a condition means.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import DecimalField, Exists, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from patronage.blocks.models import Block
from patronage.fines.models import Fee, Payment, Waiver
from patronage.patrons.models import Patron
from patronage.standing import rules

_MONEY: DecimalField[Decimal, Decimal] = DecimalField(max_digits=12, decimal_places=2)
_ZERO = Value(Decimal("0"), output_field=_MONEY)

# Short words for the list column; the details window shows the full staff messages.
SHORT_LABELS: dict[rules.Condition, str] = {
    rules.Condition.BLOCKED_BY_STAFF: "Blocked",
    rules.Condition.FINES_OVER_LIMIT: "Fines over limit",
    rules.Condition.RECORD_EXPIRED: "Expired",
    rules.Condition.RECORD_INACTIVE: "Inactive",
    rules.Condition.NO_ACTIVE_BARCODE: "No barcode",
}


def _sum(model: type[Fee] | type[Payment] | type[Waiver]) -> Coalesce:
    rows = model.objects.filter(patron=OuterRef("pk")).values("patron").annotate(total=Sum("amount")).values("total")
    return Coalesce(Subquery(rows, output_field=_MONEY), _ZERO)


def with_standing_facts(patrons: QuerySet[Patron], now: dt.datetime) -> QuerySet[Patron]:
    in_force = Block.objects.filter(patron=OuterRef("pk"), lifted_at__isnull=True).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )
    return patrons.annotate(
        fees_total=_sum(Fee),
        payments_total=_sum(Payment),
        waivers_total=_sum(Waiver),
        blocked_now=Exists(in_force),
    )


def _cents(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def summary(patron: Patron, now: dt.datetime) -> list[str]:
    """Short labels of the conditions that hold for a patron from ``with_standing_facts``.

    Needs the active barcodes prefetched as ``active_barcodes``.
    """
    fees, paid, waived = (_cents(getattr(patron, name)) for name in ("fees_total", "payments_total", "waivers_total"))
    blocked = getattr(patron, "blocked_now", False)
    facts = rules.PatronFacts(
        status=patron.status,
        expires_on=patron.expires_on,
        today=now.astimezone(ZoneInfo(patron.library.time_zone)).date(),
        has_active_barcode=bool(getattr(patron, "active_barcodes", [])),
        balance=fees - paid - waived,
        fine_limit=patron.patron_type.fine_limit,
        currency=patron.library.currency,
        # Only the presence of a block matters for the short label; the details window shows each one.
        blocks=(rules.BlockFact(0, now, None, ""),) if blocked else (),
    )
    return [SHORT_LABELS.get(reason.code, reason.code.value) for reason in rules.standing(facts).conditions]
