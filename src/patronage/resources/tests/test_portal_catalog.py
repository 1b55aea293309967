"""The portal's catalog and the resources a patron may reserve from it (``resources.queries``)."""

from __future__ import annotations

import datetime as dt

import pytest

from patronage.resources import queries
from patronage.resources import services as catalog
from patronage.resources.models import ResourceType
from tests.factories import SYSTEM, make_library, make_patron

from .builders import make_center, make_resource, make_type

pytestmark = pytest.mark.django_db
DAY = dt.date(2027, 5, 3)


def test_the_catalog_shows_what_the_center_lends_to_this_patron() -> None:
    library = make_library()
    center, other = make_center(library, "lab"), make_center(library, "annex")
    media = make_type(library, "Media", centers=[])
    cameras = make_type(library, "Cameras", centers=[center], parent=media.pk, requires_authorization=True)
    laptops = make_type(library, "Laptops", centers=[center], description="Bring your card.")
    make_type(library, "Staff only", centers=[center], visible_in_portal=False)
    make_type(library, "Annex only", centers=[other])
    holder, stranger = make_patron(library), make_patron(library)
    catalog.grant_authorization(actor=SYSTEM, patron=holder, resource_type=media, expires_on=DAY)

    mine = queries.portal_catalog(library.pk, center.pk, holder.pk, DAY)
    assert mine.reservable == {cameras.pk, laptops.pk}
    assert [t.name for t in mine.children(None)] == ["Laptops", "Media"]
    assert [t.name for t in mine.path(cameras.pk)] == ["Media", "Cameras"]
    assert mine.types[laptops.pk] == ResourceType.objects.get(pk=laptops.pk)
    assert mine.types[laptops.pk].description == "Bring your card."
    # The authorization for "Media" covers "Cameras" under it, until the day it expires.
    later = queries.portal_catalog(library.pk, center.pk, holder.pk, DAY + dt.timedelta(days=1))
    assert later.reservable == {laptops.pk}
    theirs = queries.portal_catalog(library.pk, center.pk, stranger.pk, DAY)
    assert theirs.reservable == {laptops.pk}
    assert set(theirs.types) == {laptops.pk}
    with pytest.raises(KeyError):
        theirs.types[cameras.pk]


def test_a_keyword_matches_names_in_any_case_and_literally() -> None:
    library = make_library()
    center = make_center(library)
    kind = make_type(library, "Laptops", centers=[center])
    make_resource(library, kind, center, name="Laptop 100% charged", identifier="A")
    make_resource(library, kind, center, name="laptop_2", identifier="B")
    make_resource(library, kind, center, name="Laptop x2", identifier="C")
    kit = make_resource(library, kind, center, name="Laptop kit", identifier="D")
    make_resource(library, kind, center, name="Laptop charger", identifier="E", contained_in=kit.pk)
    shown = queries.portal_catalog(library.pk, center.pk, make_patron(library).pk, DAY)

    def names(**how: object) -> set[str]:
        return {r.name for r in queries.portal_resources(shown, center.pk, **how)}  # type: ignore[arg-type]

    assert names(keyword="LAPTOP") == {"Laptop 100% charged", "laptop_2", "Laptop kit", "Laptop x2"}
    assert names(keyword="100%") == {"Laptop 100% charged"}
    assert names(keyword="_2") == {"laptop_2"}
    assert names(keyword="charger") == set()  # a kit's part is booked with the kit, not on its own
    found = queries.portal_resources(shown, center.pk, ids=[kit.pk])
    assert [(r.name, r.resource_type.name) for r in found] == [("Laptop kit", "Laptops")]
    assert queries.portal_resources(shown, center.pk, ids=[]) == []
