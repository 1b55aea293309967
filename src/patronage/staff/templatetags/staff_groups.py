"""The group line of the patron summary: the group and the members' combined balance, next to the
patron's own. Informational only; standing never looks at it."""

from __future__ import annotations

from typing import Any

from django import template

from patronage.fines import queries as fine_queries
from patronage.groups import queries as group_queries
from patronage.patrons.models import Patron

register = template.Library()


@register.simple_tag
def group_summary(patron: Patron) -> dict[str, Any] | None:
    summary = group_queries.summary_for(patron.pk)
    if summary is None:
        return None
    return {
        "group": summary.group,
        "role": summary.role,
        "members": summary.member_count,
        "group_balance": summary.balance,
        "own_balance": fine_queries.balance(patron.pk),
    }
