"""The one question every face asks: may this patron do this, here, now, and if not, why?"""

from __future__ import annotations

import datetime as dt

from patronage.core import clock
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron

from . import queries, rules
from .rules import Action, Decision, Standing


def standing(patron: Patron | int, *, at: Branch | None = None, now: dt.datetime | None = None) -> Standing:
    """Every condition that limits the patron now. ``at`` is the branch asking (for later rules)."""
    patron_id = patron if isinstance(patron, int) else patron.pk
    facts = queries.facts_for(patron_id, now or clock.now())
    if facts is None:
        raise Patron.DoesNotExist(f"patron {patron_id}")
    return rules.standing(facts)


def decide(
    patron: Patron | int, action: Action, *, at: Branch | None = None, now: dt.datetime | None = None
) -> Decision:
    return standing(patron, at=at, now=now).decision(action)
