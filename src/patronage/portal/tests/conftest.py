from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patronage.credentials import services
from patronage.libraries.models import Library
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_branch, make_library, make_patron
from tests.fixtures import tasks_run_inline  # noqa: F401 - an autouse fixture for these tests

SECRET = "plum-orchard-41-lantern"


@pytest.fixture
def library() -> Library:
    library = make_library("north", name="North Library")
    make_branch(library, "lab", name="Media Lab", is_checkout_center=True)
    return library


@pytest.fixture
def patron(library: Library) -> Patron:
    patron = make_patron(library, person_id="P-1001", barcode="2100000001", first_name="Grace", last_name="Hopper")
    services.set_password(patron, SECRET, actor=SYSTEM)
    return patron


def sign_in(client: Client, identifier: str = "P-1001", password: str = SECRET, library: str = "north") -> Any:
    return client.post(f"/portal/{library}/sign-in/", {"identifier": identifier, "password": password})


@pytest.fixture
def signed_in(patron: Patron) -> Client:
    client = Client()
    assert sign_in(client).status_code == 302
    return client
