from __future__ import annotations

import datetime as dt

import pytest

from patronage.blocks import services as blocks
from patronage.blocks.models import Block
from patronage.core import clock
from patronage.core.errors import Conflict, FieldError
from patronage.fines import services as fines
from patronage.standing.rules import Action
from patronage.standing.services import decide, standing
from tests.factories import SYSTEM, make_library, make_patron

pytestmark = pytest.mark.django_db


def test_a_block_forbids_borrowing_and_unblocking_restores_it() -> None:
    patron = make_patron(make_library())
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="Unpaid damage")
    assert decide(patron, Action.CHECK_OUT).codes == ["blocked_by_staff"]
    blocks.unblock_patron(actor=SYSTEM, patron=patron, comment="Settled")
    assert decide(patron, Action.CHECK_OUT).allowed
    block = Block.objects.get()
    assert (block.comment, block.lift_comment) == ("Unpaid damage", "Settled")


def test_a_patron_with_debts_can_still_be_blocked() -> None:
    patron = make_patron(make_library())
    fines.add_fee(actor=SYSTEM, patron=patron, amount="20.00")
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="Repeated late returns")
    assert set(standing(patron).codes) == {"blocked_by_staff", "fines_over_limit"}


def test_a_block_needs_a_comment() -> None:
    patron = make_patron(make_library())
    with pytest.raises(FieldError, match="comment"):
        blocks.block_patron(actor=SYSTEM, patron=patron, comment="   ")
    assert not Block.objects.exists()


def test_a_block_with_an_end_stops_counting_after_it() -> None:
    patron = make_patron(make_library())
    ends = clock.now() + dt.timedelta(days=7)
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="One week", ends_at=ends)
    assert "blocked_by_staff" in standing(patron).codes
    assert "blocked_by_staff" not in standing(patron, now=ends + dt.timedelta(seconds=1)).codes


def test_blocking_twice_and_unblocking_an_unblocked_patron_are_refused() -> None:
    patron = make_patron(make_library())
    with pytest.raises(Conflict):
        blocks.unblock_patron(actor=SYSTEM, patron=patron, comment="x")
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="first")
    with pytest.raises(Conflict):
        blocks.block_patron(actor=SYSTEM, patron=patron, comment="second")


def test_a_block_at_one_library_leaves_the_same_person_free_at_another() -> None:
    here = make_patron(make_library(), person_id="P-100")
    there = make_patron(make_library(), person_id="P-100")
    blocks.block_patron(actor=SYSTEM, patron=here, comment="Lost items")
    assert not decide(here, Action.CHECK_OUT).allowed
    assert decide(there, Action.CHECK_OUT).allowed
