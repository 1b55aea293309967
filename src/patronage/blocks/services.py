"""Placing and lifting manual blocks. Automatic conditions (fines, expiry) are never stored."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError
from patronage.patrons.models import Patron

from .models import Block
from .queries import active_blocks

COMMENT_MAX = 2000


def _comment(text: str, field: str) -> str:
    value = (text or "").strip()
    if not value:
        raise FieldError(field, "Add a comment saying why; it is kept with the block's history.")
    if len(value) > COMMENT_MAX:
        raise FieldError(field, f"Use at most {COMMENT_MAX} characters (this has {len(value)}).")
    return value


@transaction.atomic
def block_patron(*, actor: audit.Actor, patron: Patron, comment: str, ends_at: dt.datetime | None = None) -> Block:
    """Block the patron at their library. Loans and debts do not stand in the way."""
    patron = Patron.objects.select_for_update().get(pk=patron.pk)
    text = _comment(comment, "comment")
    now = clock.now()
    if ends_at is not None and ends_at <= now:
        raise FieldError("ends_at", "The end must lie in the future; leave it empty for a block until lifted.")
    if active_blocks(patron.pk, now).exists():
        raise Conflict("The patron is already blocked at this library; unblock first to change the block.")
    block = Block.objects.create(
        library_id=patron.library_id, patron=patron, comment=text, created_at=now,
        created_by=actor.account, created_by_label=actor.label, ends_at=ends_at,
    )  # fmt: skip
    audit.record(
        actor, "patron.blocked", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, block_id=block.pk,
    )  # fmt: skip
    return block


@transaction.atomic
def unblock_patron(*, actor: audit.Actor, patron: Patron, comment: str) -> list[Block]:
    """Lift every block in force on the patron, with a comment."""
    patron = Patron.objects.select_for_update().get(pk=patron.pk)
    text = _comment(comment, "comment")
    now = clock.now()
    blocks = list(active_blocks(patron.pk, now))
    if not blocks:
        raise Conflict("The patron is not blocked by staff at this library.")
    for block in blocks:
        block.lifted_at = now
        block.lifted_by = actor.account
        block.lifted_by_label = actor.label
        block.lift_comment = text
        block.save(update_fields=["lifted_at", "lifted_by", "lifted_by_label", "lift_comment"])
    audit.record(
        actor, "patron.unblocked", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, block_ids=[b.pk for b in blocks],
    )  # fmt: skip
    return blocks
