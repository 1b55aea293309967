from __future__ import annotations

from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client

from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.resources.tests.builders import make_center, make_resource, make_type
from tests.factories import make_library, make_patron, make_staff


@pytest.fixture
def library() -> Library:
    return make_library("main-lib", name="Main Library")


@pytest.fixture
def other_library() -> Library:
    return make_library("other-lib", name="Other Library")


@pytest.fixture
def patron(library: Library) -> Patron:
    return make_patron(library, first_name="Grace", last_name="Hopper", primary_email="grace@example.org")


@pytest.fixture
def lab(library: Library, patron: Patron) -> SimpleNamespace:
    """The library's "Media lab" center lending two laptops, and the patron."""
    center = make_center(library, "lab", name="Media lab")
    laptops = make_type(library, "Laptops", centers=[center])
    return SimpleNamespace(
        library=library,
        center=center,
        laptops=laptops,
        laptop=make_resource(library, laptops, center, identifier="LAP-1", name="Laptop one"),
        spare=make_resource(library, laptops, center, identifier="LAP-2", name="Laptop two"),
        patron=patron,
    )


StaffClient = Callable[..., Client]


@pytest.fixture
def staff_client(library: Library) -> StaffClient:
    """A signed-in client for a new staff member of ``library`` (or the given libraries)."""

    def build(permissions: Iterable[Permission] = tuple(Permission), *, at: Library | None = None) -> Client:
        user: Any = make_staff(at or library, list(permissions))
        client = Client()
        client.force_login(user)
        return client

    return build
