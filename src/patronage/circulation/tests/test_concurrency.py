"""Two workers run the lending jobs at the same moment: one invoice per late checkout, one release per
no-show. Real threads with their own connections, against committed data, on SQLite or PostgreSQL."""

from __future__ import annotations

import pytest

from patronage.circulation import services as desk
from patronage.circulation.models import JobRun, OverdueInvoice
from patronage.core import clock
from patronage.fines.models import Fee
from patronage.reservations import services as reservations
from patronage.reservations.models import ReservationEvent
from patronage.resources.tests.builders import NOW, at, make_center, make_resource, make_type
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library, make_patron

WORKERS = 4


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_jobs_run_by_several_workers_at_once_act_once() -> None:
    with clock.frozen(NOW):
        library = make_library()
        center = make_center(library)
        laptops = make_type(library, "Laptops", centers=[center])
        for n in range(3):
            make_resource(library, laptops, center, identifier=f"LAP-{n}")
        reservations.save_center_policy(actor=SYSTEM, center=center, data={"overdue_fee": "3.00"})
        late = []
        for _ in range(2):
            made = reservations.create_reservation(
                actor=SYSTEM, patron=make_patron(library), center=center, starts_at=at(10, 10), ends_at=at(10, 12),
                lines=[{"resource_type": laptops.pk}],
            )  # fmt: skip
            late.append(made)
        no_show = reservations.create_reservation(
            actor=SYSTEM, patron=make_patron(library), center=center, starts_at=at(10, 10), ends_at=at(10, 12),
            lines=[{"resource_type": laptops.pk}],
        )  # fmt: skip
    with clock.frozen(at(10, 10, 1)):
        for n, made in enumerate(late):
            desk.check_out(actor=SYSTEM, reservation=made, scanned=[f"LAP-{n}"])

    def work(_index: int) -> None:
        for name in desk.JOBS:
            desk.run_job(name)

    with clock.frozen(at(10, 13)):
        _runs, errors = split(at_once(work, WORKERS))
    assert errors == [], errors
    assert OverdueInvoice.objects.count() == 2
    assert Fee.objects.filter(kind="overdue").count() == 2
    assert ReservationEvent.objects.filter(reservation=no_show, to_state="no_show").count() == 1
    assert JobRun.objects.get(name="mark_late").runs == WORKERS
