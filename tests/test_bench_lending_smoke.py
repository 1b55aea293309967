"""The lending benchmark works: generator, both workloads and their raw-SQL sides at a tiny size.

No timing is asserted; the point is that bench/lending.py cannot rot unnoticed.
"""

from __future__ import annotations

import pytest

from bench import lending, workloads
from patronage.reservations.models import Occupancy, Reservation, ReservationSeries

pytestmark = pytest.mark.django_db


def test_generator_and_both_workloads_run_at_a_tiny_size() -> None:
    summary = lending.generate(600, types=6, resources=30, patrons=20, seed=3)

    assert 0 < summary.reservations <= 600
    assert Reservation.objects.count() == summary.reservations == Occupancy.objects.count()
    assert Occupancy.objects.filter(active=True).count() == summary.active > 0
    assert Occupancy.objects.filter(resource=None).exists()  # some are "one of this type"
    assert lending.existing(600) == summary
    built = lending.build(summary, sample=20, seed=3)
    assert [w.key for w in built] == ["availability", "series"]
    for workload in built:
        counts = lending.statements_per_call(workload, workload.keys[0])
        assert counts["floor"] >= 2
        assert counts["app"] >= 2
        result = workloads.measure(workload, calls=3, rounds=1, warmup=1, seed=1)
        assert result["floor"]["calls"] == result["app"]["calls"] == 3
        assert result["ratio_p95"] > 0
    # Every timed write was rolled back, on both sides.
    assert ReservationSeries.objects.count() == 0
    assert Reservation.objects.count() == summary.reservations


def test_the_raw_availability_reads_the_rows_the_application_weighs() -> None:
    summary = lending.generate(600, types=6, resources=30, patrons=20, seed=4)
    availability = lending.build(summary, sample=20, seed=4)[0]
    for key in availability.keys[:10]:
        units, busy = availability.floor(key)
        answer = availability.app(key)
        assert len(units) == 5
        assert {r.pk for r in answer.free_resources} <= {row[0] for row in units}
        taken = {row[1] for row in busy if row[1] is not None}
        assert not taken & {r.pk for r in answer.free_resources}
        assert answer.free_units <= len(units) - len(taken)
