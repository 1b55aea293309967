"""Staff moving the same patron at once: the moves queue on the patron's row lock, and the result is one
consistent membership. The threads really run in parallel, each with its own connection, against
committed data, on whichever database DATABASE_URL names (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection

from patronage.core.errors import Conflict
from patronage.groups import services
from patronage.groups.models import GroupMember, PatronGroup
from patronage.patrons.models import Patron
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library, make_patron

WORKERS = 6


def race(work: Callable[[int], object]) -> tuple[list[object], list[Exception]]:
    return split(at_once(work, WORKERS))


def setting() -> tuple[PatronGroup, Patron, list[PatronGroup]]:
    library = make_library()
    moving, stays = make_patron(library), make_patron(library)
    home = services.create_group(actor=SYSTEM, patron=moving, data={"name": "Home"})
    services.move_patron(actor=SYSTEM, group=home, patron=stays)
    targets = [
        services.create_group(actor=SYSTEM, patron=make_patron(library), data={"name": f"Target {i}"})
        for i in range(WORKERS)
    ]
    return home, moving, targets


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_staff_confirming_the_same_move_at_once_leave_one_consistent_group() -> None:
    home, moving, targets = setting()

    def move(index: int) -> object:
        return services.move_patron(actor=SYSTEM, group=targets[index], patron=moving, expected_from=home.pk)

    done, failed = race(move)
    assert len(done) == 1, (done, failed)
    assert len(failed) == WORKERS - 1
    assert all(isinstance(exc, services.MembershipChanged) for exc in failed), failed
    membership = GroupMember.objects.get(patron=moving)
    assert membership.group_id == done[0].group_id  # type: ignore[attr-defined]
    # Every other target still has exactly its founder; home keeps the member who stayed.
    for target in targets:
        assert target.members.count() == (2 if target.pk == membership.group_id else 1)
    assert home.members.count() == 1
    assert connection.vendor in {"sqlite", "postgresql"}


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_unconditional_moves_at_once_each_apply_in_turn_and_leave_one_membership() -> None:
    home, moving, targets = setting()

    def move(index: int) -> object:
        return services.move_patron(actor=SYSTEM, group=targets[index], patron=moving)

    done, failed = race(move)
    assert failed == []
    assert len(done) == WORKERS
    assert GroupMember.objects.filter(patron=moving).count() == 1
    assert sum(t.members.count() for t in targets) == WORKERS + 1
    assert home.members.count() == 1


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_moving_into_a_group_while_its_last_member_leaves_never_strands_anyone() -> None:
    library = make_library()
    last = make_patron(library)
    group = services.create_group(actor=SYSTEM, patron=last, data={"name": "Shrinking"})
    newcomers = [make_patron(library) for _ in range(WORKERS - 1)]

    def act(index: int) -> object:
        if index == 0:
            return services.remove_member(actor=SYSTEM, group=group, patron=last)
        return services.move_patron(actor=SYSTEM, group=group, patron=newcomers[index - 1])

    _done, failed = race(act)
    assert all(isinstance(exc, Conflict) for exc in failed), failed
    if PatronGroup.objects.filter(pk=group.pk).exists():
        assert GroupMember.objects.filter(group=group).count() >= 1
    # No membership points at a removed group, and nobody is in two.
    assert not GroupMember.objects.exclude(group__in=PatronGroup.objects.all()).exists()
    assert GroupMember.objects.values("patron").distinct().count() == GroupMember.objects.count()
