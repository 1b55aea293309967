"""The benchmark code works: generator, workloads, plans and floors at a tiny size (no timing asserted)."""

from __future__ import annotations

import pytest

from bench import generate, workloads
from patronage.core.audit import Actor
from patronage.patrons.access import patrons_for_staff
from patronage.patrons.models import Barcode, Patron
from patronage.patrons.queries import search_patrons

pytestmark = pytest.mark.django_db


def test_generator_and_every_workload_run_at_200_patrons() -> None:
    summary = generate.generate(200, seed=7)

    assert summary.patrons == Patron.objects.count() == 200
    assert summary.barcodes == Barcode.objects.count() >= 190
    assert summary.fees > 0
    built = workloads.build(summary.staff_library_id, summary.staff_user_id, sample=200, seed=7)
    assert [w.key for w in built] == ["barcode", "name_prefix", "email", "standing"]
    for workload in built:
        assert workload.keys, workload.key
        # The floor must answer the same question as the application, key for key.
        assert workloads.same_answers(workload, workload.keys[:20]) == 0, workload.key
        plans = workloads.query_plans(workload, workload.keys[0])
        assert plans["floor"]["queries"] == 1
        assert plans["app"]["queries"] >= 1
        result = workloads.measure(workload, calls=20, rounds=1, warmup=5, seed=1)
        assert result["floor"]["calls"] == result["app"]["calls"] == 20
        assert result["ratio_p95"] > 0


def test_search_finds_generated_patrons_by_barcode_email_and_name() -> None:
    summary = generate.generate(200, seed=8)
    from django.contrib.auth import get_user_model

    actor = Actor(user=get_user_model().objects.get(pk=summary.staff_user_id))
    patron = Patron.objects.filter(library_id=summary.staff_library_id).exclude(primary_email="").first()
    assert patron is not None
    scope = patrons_for_staff(actor)
    old_or_new = Barcode.objects.filter(patron=patron).values_list("number", flat=True)
    for number in old_or_new:
        assert patron in search_patrons(scope, number)
    assert patron in search_patrons(scope, patron.primary_email.upper())
    assert patron in search_patrons(scope, patron.last_name[:3])


def test_floors_file_names_every_workload() -> None:
    assert set(workloads.load_floors()) == {
        "barcode",
        "name_prefix",
        "email",
        "standing",
    }


def test_percentile_is_nearest_rank() -> None:
    assert workloads.percentile([1, 2, 3, 4], 50) == 2
    assert workloads.percentile(list(range(1, 101)), 95) == 95
    assert workloads.percentile([5], 99) == 5
