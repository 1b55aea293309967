from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from patronage.core import clock
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import NOW, make_center, make_resource, make_type
from tests.factories import SYSTEM, make_library, make_patron


@pytest.fixture
def frozen_now():
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def lab(frozen_now):
    """A library with one checkout center lending two laptops; a patron in good standing."""
    library = make_library()
    center = make_center(library)
    laptops = make_type(library, "Laptops", centers=[center])
    return SimpleNamespace(
        library=library,
        center=center,
        laptops=laptops,
        laptop=make_resource(library, laptops, center, identifier="LAP-1"),
        spare=make_resource(library, laptops, center, identifier="LAP-2"),
        patron=make_patron(library),
    )


def book(lab: Any, starts_at, ends_at, lines=None, *, patron=None, **kwargs: Any) -> Reservation:
    """Reserve through the service (the laptop unless lines are given)."""
    return reservations.create_reservation(
        actor=kwargs.pop("actor", SYSTEM),
        patron=patron or lab.patron,
        center=kwargs.pop("center", lab.center),
        starts_at=starts_at,
        ends_at=ends_at,
        lines=lines if lines is not None else [{"resource": lab.laptop.pk}],
        **kwargs,
    )
