"""The library and its checkout centers, read in one statement for every portal page."""

from __future__ import annotations

import pytest
from django.test import Client

from patronage.credentials import services
from patronage.libraries.queries import library_and_centers
from patronage.patrons.models import Patron
from tests.factories import make_branch, make_library

from .conftest import sign_in

pytestmark = pytest.mark.django_db


def test_the_centers_are_the_checkout_centers_the_credentials_give(patron: Patron) -> None:
    library = patron.library
    make_branch(library, "annex", name="Annex Desk", is_checkout_center=True)
    make_branch(library, "stacks", name="Stacks", is_checkout_center=False)
    make_branch(make_library("south", name="South Library"), "lab", name="Another Lab", is_checkout_center=True)
    found, centers = library_and_centers("north")
    assert found == library
    assert [c.name for c in centers] == ["Annex Desk", "Media Lab"]
    assert centers == services.checkout_centers(patron)
    assert all(c.library == library for c in centers)


def test_a_library_without_centers_and_an_unknown_code() -> None:
    library = make_library("east", name="East Library")
    assert library_and_centers("east") == (library, [])
    assert library_and_centers("nowhere") == (None, [])
    assert Client().get("/portal/nowhere/sign-in/").status_code == 404


def test_a_patron_with_two_centers_chooses_and_can_switch(patron: Patron) -> None:
    annex = make_branch(patron.library, "annex", name="Annex Desk", is_checkout_center=True)
    client = Client()
    sign_in(client)
    assert client.get("/portal/north/").headers["Location"] == "/portal/north/center/"
    assert client.post("/portal/north/center/", {"center": annex.pk}).status_code == 302
    page = client.get("/portal/north/").content.decode()
    assert "Center: <strong>Annex Desk</strong>" in page
    assert 'href="/portal/north/center/">Switch center</a>' in page
