"""Gathering a patron's standing facts: one statement, plus one more only when blocks exist.

Hand-written SQL because this is the hottest path in the product (every SIP2 status request,
every checkout, every portal page); see docs/performance.md for its cost next to the raw floor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection

from patronage.blocks.models import Block
from patronage.blocks.queries import active_blocks
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.models import Library
from patronage.patrons.models import Barcode, Patron, PatronType

from . import facts
from .rules import BlockFact, PatronFacts


@cache
def _statement(registered_facts: tuple[tuple[str, str, int], ...]) -> tuple[str, int]:
    """The statement and how many extra ``now`` parameters the registered facts take; built once per set of
    registered facts instead of on every decision."""
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
    registered = "".join(f",\n               {sql}" for _, sql, _ in registered_facts)
    sql = f"""
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
    return sql, sum(n for _, _, n in registered_facts)


_CENT = Decimal("0.01")


def as_amount(value: object) -> Decimal:
    """An amount read by raw SQL (None as zero). SQLite returns sums of decimal columns as floats; amounts
    have two places, so rounding to the cent restores the exact value."""
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(_CENT)
    return Decimal(str(value or 0)).quantize(_CENT)


def as_date(value: object) -> dt.date:
    """A date read by raw SQL (SQLite gives text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def registered_fields(values: Mapping[str, object]) -> dict[str, Any]:
    """The ``PatronFacts`` fields the registered facts fill (``standing.facts``), from their raw values by name.

    Every reader of the facts statement (one patron here, a group's members in ``groups.queries``) goes
    through this, so a fact added to the registry reaches all of them.
    """
    return {
        "overdue_owed": as_amount(values.get("overdue_owed")),
        "late_checkouts": int(str(values.get("late_checkouts") or 0)),
        "verification_pending": bool(values.get("verification_pending")),
    }


def facts_for(patron_id: int, now: dt.datetime) -> PatronFacts | None:
    registered_facts = facts.expressions()
    sql, extra = _statement(registered_facts)
    with connection.cursor() as cursor:
        # In the database's own form (on SQLite a UTC text like the stored values), so that comparisons
        # in raw SQL hold whatever zone ``now`` carries.
        at = connection.ops.adapt_datetimefield_value(now)
        cursor.execute(sql, [at, *([at] * extra), patron_id])
        row = cursor.fetchone()
    if row is None:
        return None
    status, expires_on, fine_limit, currency, time_zone, has_barcode, fees, paid, waived, blocked = row[:10]
    registered = {name: value or 0 for (name, _, _), value in zip(registered_facts, row[10:], strict=True)}
    blocks: tuple[BlockFact, ...] = ()
    if blocked:
        # Values, not Block instances: the rule needs four fields, and the ORM's objects cost more than the read.
        in_force = active_blocks(patron_id, now).order_by("created_at", "pk")
        blocks = tuple(BlockFact(*row) for row in in_force.values_list("pk", "created_at", "ends_at", "comment"))
    return PatronFacts(
        status=status,
        expires_on=as_date(expires_on),
        today=now.astimezone(ZoneInfo(time_zone)).date(),
        has_active_barcode=bool(has_barcode),
        balance=as_amount(fees) - as_amount(paid) - as_amount(waived),
        fine_limit=as_amount(fine_limit),
        currency=currency,
        blocks=blocks,
        **registered_fields(registered),
    )
