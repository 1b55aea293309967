"""A portal world shared by the feeds and tickets tests: the North library (Berlin time), a checkout
center with one camera, and a signed-in patron. Their conftest files import the fixtures from here."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from patronage.core import clock
from patronage.credentials import services as credentials
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources import services as catalog
from patronage.resources.models import Resource
from tests.factories import SYSTEM, make_branch, make_library, make_patron

SECRET = "plum-orchard-41-lantern"


@pytest.fixture
def library() -> Library:
    return make_library("north", name="North Library", time_zone="Europe/Berlin")


@pytest.fixture
def center(library: Library) -> Branch:
    center = make_branch(library, "lab", name="Media Lab", is_checkout_center=True)
    reservations.save_center_policy(actor=SYSTEM, center=center, data={"min_lead_minutes": "0"})
    return center


@pytest.fixture
def camera(library: Library, center: Branch) -> Resource:
    kind = catalog.save_resource_type(actor=SYSTEM, library=library, data={"name": "Cameras", "centers": [center.pk]})
    return catalog.save_resource(
        actor=SYSTEM, library=library,
        data={"identifier": "CAM-1", "name": "Camera One", "resource_type": kind.pk, "center": center.pk},
    )  # fmt: skip


def new_patron(library: Library, person_id: str, first: str = "Grace", last: str = "Hopper") -> Patron:
    patron = make_patron(library, person_id=person_id, first_name=first, last_name=last)
    credentials.set_password(patron, SECRET, actor=SYSTEM)
    return patron


@pytest.fixture
def patron(library: Library, center: Branch) -> Patron:
    return new_patron(library, "P-1001")


def sign_in(client: Client, identifier: str, library: str = "north") -> Client:
    response = client.post(f"/portal/{library}/sign-in/", {"identifier": identifier, "password": SECRET})
    assert response.status_code == 302, response.content.decode()[:500]
    client.get(f"/portal/{library}/center/")
    return client


@pytest.fixture
def portal(patron: Patron) -> Client:
    return sign_in(Client(), "P-1001")


def book(patron: Patron, center: Branch, camera: Resource, *, days: int = 3, title: str = "Film class") -> Reservation:
    start = clock.now().replace(microsecond=0, second=0) + dt.timedelta(days=days)
    return reservations.create_reservation(
        actor=SYSTEM, patron=patron, center=center, starts_at=start, ends_at=start + dt.timedelta(hours=2),
        lines=[{"resource": camera.pk}], title=title,
    )  # fmt: skip
