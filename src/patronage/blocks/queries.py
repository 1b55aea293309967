from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from .models import Block


def active_blocks(patron_id: int, now: dt.datetime) -> QuerySet[Block]:
    """Blocks in force: not lifted, and without an end or ending after ``now``."""
    return Block.objects.filter(patron_id=patron_id, lifted_at__isnull=True).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )
