"""A lending world for the dashboard and my-reservations tests: one center, laptops, two patrons."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.test import Client

from patronage.credentials import services as credentials
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import make_center, make_resource, make_type
from tests.factories import SYSTEM, make_library, make_patron

from .conftest import SECRET


def build() -> SimpleNamespace:
    """Call with the clock frozen (``builders.NOW``); the library's time zone is America/New_York."""
    library = make_library("north", name="North Library")
    center = make_center(library, "lab", name="Media Lab")
    laptops = make_type(library, "Laptops", centers=[center])
    grace = make_patron(library, person_id="P-1", first_name="Grace", last_name="Hopper")
    alan = make_patron(library, person_id="P-2", first_name="Alan", last_name="Turing")
    for patron in (grace, alan):
        credentials.set_password(patron, SECRET, actor=SYSTEM)
    return SimpleNamespace(
        library=library,
        center=center,
        laptops=laptops,
        laptop=make_resource(library, laptops, center, identifier="LAP-1", name="Laptop One"),
        spare=make_resource(library, laptops, center, identifier="LAP-2", name="Laptop Two"),
        grace=grace,
        alan=alan,
    )


def client_for(person_id: str) -> Client:
    client = Client()
    response = client.post("/portal/north/sign-in/", {"identifier": person_id, "password": SECRET})
    assert response.status_code == 302, response.content
    client.get("/portal/north/center/")
    return client


def book(world: Any, starts_at: Any, ends_at: Any, lines: Any = None, **kwargs: Any) -> Reservation:
    return reservations.create_reservation(
        actor=kwargs.pop("actor", SYSTEM),
        patron=kwargs.pop("patron", world.grace),
        center=world.center,
        starts_at=starts_at,
        ends_at=ends_at,
        lines=lines if lines is not None else [{"resource": world.laptop.pk}],
        **kwargs,
    )
