from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patronage.credentials import services as credentials
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_branch, make_library, make_patron

SECRET = "plum-orchard-41-lantern"


@pytest.fixture(autouse=True)
def mail_in_memory(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PATRONAGE_PHONE_VALIDATION = True


@pytest.fixture
def library() -> Library:
    return make_library("north", name="North Library", country="US")


@pytest.fixture
def main(library: Library) -> Branch:
    return make_branch(library, "main", name="Main", email="desk@north.example.org")


@pytest.fixture
def east(library: Library) -> Branch:
    return make_branch(library, "east", name="East")


@pytest.fixture
def patron(library: Library, main: Branch) -> Patron:
    patron = make_patron(
        library, person_id="P-1001", first_name="Grace", last_name="Hopper", primary_email="grace@example.org",
        alternate_email="g.hopper@example.net", registered_branch=main.pk,
    )  # fmt: skip
    credentials.set_password(patron, SECRET, actor=SYSTEM)
    return patron


def sign_in(client: Client, identifier: str = "P-1001") -> Client:
    response = client.post("/portal/north/sign-in/", {"identifier": identifier, "password": SECRET})
    assert response.status_code == 302, response.content.decode()[:400]
    return client


@pytest.fixture
def portal(patron: Patron) -> Client:
    return sign_in(Client())
