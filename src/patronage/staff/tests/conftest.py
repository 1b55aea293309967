from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.test import Client

from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
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
