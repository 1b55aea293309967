"""Gathering a patron's standing facts: one statement, plus one more only when blocks exist.

Hand-written SQL because this is the hottest path in the product (every SIP2 status request,
every checkout, every portal page); see docs/performance.md for its cost next to the raw floor.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from patronage.blocks.models import Block
from patronage.blocks.queries import active_blocks
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.models import Library
from patronage.patrons.models import Barcode, Patron, PatronType

from . import facts
from .rules import BlockFact, PatronFacts


def _sql() -> str:
    t = {
        "patron": Patron._meta.db_table,
        "ptype": PatronType._meta.db_table,
        "library": Library._meta.db_table,
        "barcode": Barcode._meta.db_table,
        "fee": Fee._meta.db_table,
        "payment": Payment._meta.db_table,
        "waiver": Waiver._meta.db_table,
        "block": Block._meta.db_table,
    }
    registered = "".join(f",\n               {sql}" for _, sql, _ in facts.expressions())
    return f"""
        SELECT p.status, p.expires_on, t.fine_limit, l.currency, l.time_zone,
               EXISTS (SELECT 1 FROM {t["barcode"]} b WHERE b.patron_id = p.id AND b.is_active),
               COALESCE((SELECT SUM(f.amount) FROM {t["fee"]} f WHERE f.patron_id = p.id), 0),
               COALESCE((SELECT SUM(y.amount) FROM {t["payment"]} y WHERE y.patron_id = p.id), 0),
               COALESCE((SELECT SUM(w.amount) FROM {t["waiver"]} w WHERE w.patron_id = p.id), 0),
               EXISTS (SELECT 1 FROM {t["block"]} k WHERE k.patron_id = p.id AND k.lifted_at IS NULL
                       AND (k.ends_at IS NULL OR k.ends_at > %s)){registered}
        FROM {t["patron"]} p
        JOIN {t["ptype"]} t ON t.id = p.patron_type_id
        JOIN {t["library"]} l ON l.id = p.library_id
        WHERE p.id = %s
    """


_CENT = Decimal("0.01")


def _decimal(value: object) -> Decimal:
    # SQLite returns sums of decimal columns as floats; amounts have two places, so rounding
    # to the cent restores the exact value.
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(_CENT)
    return Decimal(str(value)).quantize(_CENT)


def _to_date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def facts_for(patron_id: int, now: dt.datetime) -> PatronFacts | None:
    with connection.cursor() as cursor:
        # In the database's own form (on SQLite a UTC text like the stored values), so that comparisons
        # in raw SQL hold whatever zone ``now`` carries.
        at = connection.ops.adapt_datetimefield_value(now)
        extra = [at] * sum(n for _, _, n in facts.expressions())
        cursor.execute(_sql(), [at, *extra, patron_id])
        row = cursor.fetchone()
    if row is None:
        return None
    status, expires_on, fine_limit, currency, time_zone, has_barcode, fees, paid, waived, blocked = row[:10]
    registered = {name: value or 0 for (name, _, _), value in zip(facts.expressions(), row[10:], strict=True)}
    blocks: tuple[BlockFact, ...] = ()
    if blocked:
        blocks = tuple(
            BlockFact(b.pk, b.created_at, b.ends_at, b.comment)
            for b in active_blocks(patron_id, now).order_by("created_at")
        )
    return PatronFacts(
        status=status,
        expires_on=_to_date(expires_on),
        today=now.astimezone(ZoneInfo(time_zone)).date(),
        has_active_barcode=bool(has_barcode),
        balance=_decimal(fees) - _decimal(paid) - _decimal(waived),
        fine_limit=_decimal(fine_limit),
        currency=currency,
        blocks=blocks,
        overdue_owed=_decimal(registered["overdue_owed"]),
        late_checkouts=int(registered["late_checkouts"]),
    )
