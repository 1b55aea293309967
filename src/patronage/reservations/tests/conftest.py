from __future__ import annotations

from typing import Any

import pytest

from patronage.core import clock
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import NOW, make_lab
from tests.factories import SYSTEM, make_library


@pytest.fixture
def frozen_now():
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def lab(frozen_now):
    """A library with one checkout center lending two laptops; a patron in good standing."""
    return make_lab(make_library())


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
