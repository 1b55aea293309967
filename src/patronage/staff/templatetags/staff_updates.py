"""The pending update request line of the staff patron page (the reason behind ``verification_pending``)."""

from __future__ import annotations

from django import template

from patronage.patrons.models import Patron
from patronage.updates import queries
from patronage.updates.models import UpdateRequest

register = template.Library()


@register.simple_tag
def pending_update_request(patron: Patron) -> UpdateRequest | None:
    return queries.pending_for(patron)
