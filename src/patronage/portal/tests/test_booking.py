"""The portal's New Reservation flow: browse, search, availability, the cart, Review & Submit."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.blocks import services as blocks
from patronage.core import clock
from patronage.credentials import services as credentials
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.models import Authorization
from patronage.resources.tests.builders import NOW, make_center, make_resource, make_type
from tests.factories import SYSTEM, make_library, make_patron

from .conftest import SECRET, sign_in

pytestmark = pytest.mark.django_db

NEW = "/portal/north/reservations/new/"
REVIEW = "/portal/north/reservations/new/review/"
# NOW is Monday 3 May 2027, noon in New York (the library's zone); book the Monday after.
WHEN = {"starts_on": "2027-05-10", "starts_time": "10:00", "ends_on": "2027-05-10", "ends_time": "12:00"}


@pytest.fixture(autouse=True)
def frozen_now() -> Any:
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def world(library: Library, patron: Patron) -> SimpleNamespace:
    center = Branch.objects.get(library=library, code="lab")
    annex = make_center(library, "annex", name="Annex")
    cameras = make_type(library, "Cameras", centers=[center])
    dslr = make_type(library, "DSLR cameras", centers=[center, annex], parent=cameras.pk)
    hidden = make_type(library, "Secret gear", centers=[center], visible_in_portal=False)
    drones = make_type(library, "Drones", centers=[center], requires_authorization=True)
    lasers = make_type(library, "Lasers", centers=[center], requires_authorization=True)
    cables = make_type(library, "Cables", centers=[center])
    Authorization.objects.create(patron=patron, resource_type=lasers, granted_at=NOW)
    south = make_library("south", name="South Library")
    south_center = make_center(south, "desk")
    south_kind = make_type(south, "Cameras", centers=[south_center])
    return SimpleNamespace(
        library=library,
        center=center,
        patron=patron,
        cameras=cameras,
        dslr=dslr,
        hidden=hidden,
        drones=drones,
        lasers=lasers,
        cables=cables,
        canon=make_resource(library, dslr, center, name="Canon <b>EOS</b>", description="Full frame body"),
        nikon=make_resource(library, dslr, center, name="Nikon D750", condition_notes="Scratch on the grip"),
        secret=make_resource(library, hidden, center, name="Prototype box"),
        drone=make_resource(library, drones, center, name="Quadcopter"),
        laser=make_resource(library, lasers, center, name="Laser cutter", accessories="Safety goggles"),
        cable_units=[make_resource(library, cables, center, name=f"HDMI cable {n}") for n in range(12)],
        annex_camera=make_resource(library, dslr, annex, name="Annex camera"),
        south_camera=make_resource(south, south_kind, south_center, name="South camera"),
    )


@pytest.fixture
def client(signed_in: Client, world: SimpleNamespace) -> Client:
    """Signed in, with the "lab" center chosen (the library has two)."""
    assert signed_in.post("/portal/north/center/", {"center": world.center.pk}).status_code == 302
    return signed_in


def save_details(client: Client, **changes: Any) -> Any:
    return client.post(NEW, {"action": "details", "pickup_option": "desk", "repeat": "none", **WHEN, **changes})


def add(client: Client, resource: Any) -> Any:
    return client.post(NEW, {"action": "add_resource", "resource": resource.pk})


def add_type(client: Client, kind: Any, quantity: Any = 1) -> Any:
    return client.post(NEW, {"action": "add_type", "resource_type": kind.pk, "quantity": quantity})


def submit(client: Client) -> Any:
    page = client.get(REVIEW)
    assert page.status_code == 200, page.content
    token = re.search(r'name="token" value="([^"]+)"', page.content.decode())
    assert token is not None
    return client.post(REVIEW, {"token": token.group(1)})


def book_for_someone_else(world: SimpleNamespace, resource: Any) -> Reservation:
    other = make_patron(world.library, first_name="Ada", last_name="Lovelace")
    return reservations.create_reservation(
        actor=SYSTEM, patron=other, center=world.center, starts_at="2027-05-10T09:00", ends_at="2027-05-10T13:00",
        lines=[{"resource": resource.pk}],
    )  # fmt: skip


def mine(world: SimpleNamespace) -> list[Reservation]:
    return list(Reservation.objects.filter(patron=world.patron).order_by("starts_at"))


def text(response: Any) -> str:
    return str(response.content.decode())


# --- browse and search ---------------------------------------------------------------------------------


def test_browse_shows_only_visible_types_the_patron_may_reserve(client: Client, world: SimpleNamespace) -> None:
    top = text(client.get(NEW))
    assert "Cameras" in top
    assert "Lasers" in top
    assert "Cables" in top
    assert "Secret gear" not in top  # hidden from the portal
    assert "Drones" not in top  # needs an authorization the patron lacks
    cameras = text(client.get(NEW, {"type": world.cameras.pk}))
    assert "DSLR cameras" in cameras
    assert client.get(NEW, {"type": world.hidden.pk}).status_code == 404
    assert client.get(NEW, {"type": world.drones.pk}).status_code == 404
    assert client.get(NEW, {"resource": world.drone.pk}).status_code == 404
    lasers = text(client.get(NEW, {"type": world.lasers.pk, "items": "1"}))
    assert "Laser cutter" in lasers  # authorized


def test_search_matches_type_and_resource_names_but_never_hidden_ones(client: Client, world: SimpleNamespace) -> None:
    found = text(client.get(NEW, {"q": "nikon"}))
    assert "Nikon D750" in found
    assert "DSLR cameras" in text(client.get(NEW, {"q": "dslr"}))
    assert "Quadcopter" not in text(client.get(NEW, {"q": "quad"}))
    assert "Prototype box" not in text(client.get(NEW, {"q": "proto"}))
    assert "Nothing matches" in text(client.get(NEW, {"q": "zeppelin"}))


def test_resource_info_shows_parts_notes_and_accessories(client: Client, world: SimpleNamespace) -> None:
    make_resource(world.library, world.cables, world.center, name="Spare battery", contained_in=world.laser.pk)
    info = text(client.get(NEW, {"resource": world.laser.pk}))
    assert "Laser cutter" in info
    assert "Safety goggles" in info
    assert "Spare battery" in info
    assert "Scratch on the grip" in text(client.get(NEW, {"resource": world.nikon.pk}))


# --- availability --------------------------------------------------------------------------------------


def test_specific_items_show_each_resource_free_or_why_not(client: Client, world: SimpleNamespace) -> None:
    book_for_someone_else(world, world.canon)
    before = text(client.get(NEW, {"type": world.dslr.pk, "items": "1"}))
    assert "Save the start and end above" in before
    assert "Not free" not in before
    assert save_details(client).status_code == 302
    page = text(client.get(NEW, {"type": world.dslr.pk, "items": "1"}))
    canon = page[page.index("Canon &lt;b&gt;EOS&lt;/b&gt;") : page.index("Nikon D750")]
    assert "Not free" in canon
    assert "is booked 2027-05-10 09:00-13:00" in canon
    nikon = page[page.index("Nikon D750") :]
    assert "Free" in nikon[:200]
    assert "Annex camera" not in page  # another center's


def test_the_items_list_costs_the_same_however_many_items_are_busy(
    client: Client, world: SimpleNamespace, django_assert_max_num_queries: Any
) -> None:
    save_details(client)
    items = {"type": world.cables.pk, "items": "1"}
    book_for_someone_else(world, world.cable_units[0])
    with CaptureQueriesContext(connection) as one_busy:
        assert text(client.get(NEW, items)).count("Not free") == 1
    for unit in world.cable_units[1:10]:
        book_for_someone_else(world, unit)
    with django_assert_max_num_queries(len(one_busy.captured_queries)):
        page = text(client.get(NEW, items))
    assert page.count("Not free") == 10
    assert page.count("is booked 2027-05-10 09:00-13:00") == 10


def test_reserve_one_of_a_type_shows_the_free_count(client: Client, world: SimpleNamespace) -> None:
    save_details(client)
    assert "<strong>2</strong> free" in text(client.get(NEW, {"type": world.dslr.pk}))
    book_for_someone_else(world, world.canon)
    assert "<strong>1</strong> free" in text(client.get(NEW, {"type": world.dslr.pk}))


# --- the cart --------------------------------------------------------------------------------------------


def test_the_cart_keeps_quantities_past_ten_and_removes_lines(client: Client, world: SimpleNamespace) -> None:
    assert add_type(client, world.cables, 12).status_code == 302
    assert add(client, world.nikon).status_code == 302
    page = text(client.get(NEW))
    assert re.search(rf'id="f-quantity-t{world.cables.pk}"[^>]*value="12"', page)
    assert "Nikon D750" in page
    changed = client.post(NEW, {"action": "quantity", "key": f"t{world.cables.pk}", "quantity": "11"})
    assert changed.status_code == 302
    assert re.search(r'value="11"', text(client.get(NEW)))
    too_many = client.post(NEW, {"action": "quantity", "key": f"t{world.cables.pk}", "quantity": "500"})
    assert too_many.status_code == 400
    assert "a whole number from 1 to 50" in text(too_many)
    assert f'href="#f-quantity-t{world.cables.pk}"' in text(too_many)  # the summary links to the field
    assert client.post(NEW, {"action": "remove", "key": f"r{world.nikon.pk}"}).status_code == 302
    page = text(client.get(NEW))
    assert "Nikon D750" not in page[page.index('id="cart"') :]
    assert "Your cart (1)" in page


def test_twelve_of_a_type_are_booked(client: Client, world: SimpleNamespace) -> None:
    save_details(client)
    add_type(client, world.cables, 12)
    assert submit(client).status_code == 302
    (made,) = mine(world)
    assert [(line.resource_type_id, line.quantity) for line in made.lines.all()] == [(world.cables.pk, 12)]


# --- submit ----------------------------------------------------------------------------------------------


def test_submit_books_with_the_patron_as_operator_through_the_portal(client: Client, world: SimpleNamespace) -> None:
    save_details(client, title="Film club", note="Please charge the batteries")
    add(client, world.nikon)
    review = text(client.get(REVIEW))
    assert "Film club" in review
    assert "Nikon D750" in review
    assert "Mon 2027-05-10 10:00" in review
    done = submit(client)
    assert done.status_code == 302
    (made,) = mine(world)
    assert made.channel == Reservation.Channel.PORTAL
    assert made.operator is None
    assert made.operator_label == f"patron {world.patron.pk}"  # by id, never by name
    assert made.state == "reserved"
    assert made.title == "Film club"
    assert made.note_to_staff == "Please charge the batteries"
    assert made.events.get().channel == "portal"
    page = text(client.get(done["Location"]))
    assert "confirmed" in page
    assert "awaits approval" not in page
    assert f"/portal/north/reservations/{made.pk}/" in page
    assert "Your cart (0)" in text(client.get(NEW))  # the draft is gone


def test_a_center_needing_approval_says_the_reservation_awaits_it(client: Client, world: SimpleNamespace) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=world.center, data={"approval_required": True})
    save_details(client)
    add(client, world.nikon)
    assert "wait for approval" in text(client.get(REVIEW))
    done = submit(client)
    (made,) = mine(world)
    assert made.state == "pending_approval"
    assert "awaits approval" in text(client.get(done["Location"]))


def test_a_refusal_lists_every_reason_and_offers_free_alternatives(client: Client, world: SimpleNamespace) -> None:
    blocks.block_patron(actor=SYSTEM, patron=world.patron, comment="Damaged a tripod")
    book_for_someone_else(world, world.canon)
    save_details(client)
    add(client, world.canon)
    refused = submit(client)
    assert refused.status_code == 409
    page = text(refused)
    assert "could not be made (2 reasons)" in page
    assert 'data-code="blocked_by_staff"' in page
    assert "What to do:" in page
    assert 'data-code="resource_booked"' in page
    assert "is booked 2027-05-10 09:00-13:00" in page
    assert "Take Nikon D750 instead" in page  # another free resource of the type
    assert "1 of this type is free" in page
    assert mine(world) == []


def test_taking_the_offered_alternative_books_it(client: Client, world: SimpleNamespace) -> None:
    book_for_someone_else(world, world.canon)
    save_details(client)
    add(client, world.canon)
    assert submit(client).status_code == 409
    swapped = client.post(NEW, {"action": "replace", "key": f"r{world.canon.pk}", "resource": world.nikon.pk})
    assert swapped["Location"] == REVIEW
    assert submit(client).status_code == 302
    assert [line.resource_id for line in mine(world)[0].lines.all()] == [world.nikon.pk]


def test_title_required_where_the_center_says(client: Client, world: SimpleNamespace) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=world.center, data={"title_required": True})
    page = text(client.get(NEW))
    assert re.search(r'id="f-title"[^>]* required', page)
    save_details(client)
    add(client, world.nikon)
    refused = submit(client)
    assert refused.status_code == 409
    assert f'href="{NEW}#f-title"' in text(refused)  # the reason links to the field
    assert mine(world) == []
    save_details(client, title="Chemistry 101")
    assert submit(client).status_code == 302
    assert mine(world)[0].title == "Chemistry 101"


def test_bad_times_and_repeats_get_field_errors_and_save_nothing(client: Client, world: SimpleNamespace) -> None:
    wrong = save_details(client, ends_time="09:00")
    assert wrong.status_code == 400
    assert "The end must be after the start." in text(wrong)
    assert 'href="#f-ends_on"' in text(wrong)
    no_end = save_details(client, repeat="weekly", repeat_weekdays=["mon"], repeat_end="until", repeat_until="")
    assert no_end.status_code == 400
    assert "Say when the series ends" in text(no_end)
    assert client.get(REVIEW)["Location"].startswith(NEW)  # nothing to review yet


def test_a_refused_details_form_keeps_the_repeat_choices_given(client: Client, world: SimpleNamespace) -> None:
    refused = save_details(
        client, repeat="weekly", repeat_weekdays=["tue", "fri"], repeat_month_day="31", repeat_week_of_month="last",
        repeat_weekday="wed", repeat_end="count", repeat_count="",
    )  # fmt: skip
    assert refused.status_code == 400
    page = text(refused)
    assert '<option value="weekly" selected>Weekly, on the days chosen</option>' in page
    assert page.count(" selected>") == 4  # the repeat, the day of the month, the week of the month, the weekday
    assert '<option value="31" selected>31</option>' in page
    assert '<option value="last" selected>last</option>' in page
    assert '<option value="wed" selected>Wednesday</option>' in page
    assert '<option value="monthly_weekday">Monthly, on a weekday (e.g. &quot;the 2nd Tuesday&quot;)</option>' in page
    checked = re.findall(r'id="f-repeat_weekdays-(\w+)" name="repeat_weekdays" value="\w+" checked', page)
    assert checked == ["tue", "fri"]
    assert '<label for="f-repeat_weekdays-sun">Sunday</label>' in page


def test_an_item_added_from_the_list_keeps_the_list(client: Client, world: SimpleNamespace) -> None:
    """Each item's Add form carries the CSRF token and what the page was showing, to come back to it."""
    save_details(client)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    page = text(strict.get(NEW, {"type": world.dslr.pk, "items": "1"}))
    forms = [f.split("</form>")[0] for f in page.split("<form")[1:]]
    (form,) = [f for f in forms if f'name="resource" value="{world.nikon.pk}"' in f]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert fields.keys() == {"csrfmiddlewaretoken", "action", "resource", "type", "items"}
    added = strict.post(NEW, fields)
    assert added.status_code == 302
    assert added["Location"].startswith(f"{NEW}?type={world.dslr.pk}&items=1")
    assert "Nikon D750" in text(client.get(NEW))


def test_repeats_book_a_series(client: Client, world: SimpleNamespace) -> None:
    save_details(
        client, repeat="weekly", repeat_interval="1", repeat_weekdays=["mon", "wed"], repeat_end="count",
        repeat_count="4",
    )  # fmt: skip
    add(client, world.nikon)
    assert "Every week on Monday, Wednesday, 4 times" in text(client.get(REVIEW))
    done = submit(client)
    assert done.status_code == 302
    made = mine(world)
    assert [r.starts_at.date().isoformat() for r in made] == ["2027-05-10", "2027-05-12", "2027-05-17", "2027-05-19"]
    assert len({r.series_id for r in made}) == 1
    assert made[0].series_id is not None
    assert all(r.channel == "portal" for r in made)
    assert text(client.get(done["Location"])).count("Reservation for") == 4


def test_a_series_with_one_busy_date_books_nothing(client: Client, world: SimpleNamespace) -> None:
    book_for_someone_else(world, world.nikon)  # the first Monday
    save_details(client, repeat="weekly", repeat_weekdays=["mon"], repeat_end="count", repeat_count="3")
    add(client, world.nikon)
    refused = submit(client)
    assert refused.status_code == 409
    assert "On Mon 2027-05-10 10:00:" in text(refused)
    assert mine(world) == []


def test_a_double_submit_books_once(client: Client, world: SimpleNamespace) -> None:
    save_details(client)
    add(client, world.nikon)
    page = text(client.get(REVIEW))
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    first = client.post(REVIEW, {"token": token.group(1)})
    again = client.post(REVIEW, {"token": token.group(1)})  # reload, or back and submit again
    assert first.status_code == again.status_code == 302
    assert again["Location"] == first["Location"]
    assert len(mine(world)) == 1
    assert client.post(REVIEW, {"token": "forged"}).status_code in (302, 409)
    assert len(mine(world)) == 1


def test_a_stale_token_books_nothing(client: Client, world: SimpleNamespace) -> None:
    save_details(client)
    add(client, world.nikon)
    client.get(REVIEW)
    stale = client.post(REVIEW, {"token": "not-the-token"})
    assert stale.status_code == 409
    assert "already sent or has expired" in text(stale)
    assert mine(world) == []


# --- isolation and safety ---------------------------------------------------------------------------------


def test_another_library_or_center_resource_is_refused(client: Client, world: SimpleNamespace) -> None:
    for resource in (world.south_camera, world.annex_camera, world.secret, world.drone):
        assert add(client, resource).status_code == 404, resource.name
        assert client.get(NEW, {"resource": resource.pk}).status_code == 404
    assert add_type(client, world.hidden).status_code == 404
    assert client.post(NEW, {"action": "add_resource", "resource": "x"}).status_code == 404
    assert "Your cart (0)" in text(client.get(NEW))


def test_every_form_needs_the_csrf_token(client: Client, world: SimpleNamespace) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    assert strict.get(NEW).status_code == 200
    assert strict.post(NEW, {"action": "add_resource", "resource": world.nikon.pk}).status_code == 403
    assert strict.post(REVIEW, {"token": "x"}).status_code == 403
    assert "csrfmiddlewaretoken" in text(strict.get(NEW))


def test_html_in_names_is_shown_as_text(client: Client, world: SimpleNamespace) -> None:
    add(client, world.canon)
    page = text(client.get(NEW, {"type": world.dslr.pk, "items": "1"}))
    assert "Canon &lt;b&gt;EOS&lt;/b&gt;" in page
    assert "<b>EOS</b>" not in page


def test_signed_out_patrons_are_sent_to_sign_in(world: SimpleNamespace) -> None:
    response = Client().get(NEW)
    assert response.status_code == 302
    assert response["Location"] == "/portal/north/sign-in/"


def test_the_dashboard_menu_leads_to_a_new_reservation(client: Client, world: SimpleNamespace) -> None:
    assert f'href="{NEW}"' in text(client.get("/portal/north/"))


def test_the_result_page_is_not_shown_to_the_next_patron_in_the_browser(client: Client, world: SimpleNamespace) -> None:
    save_details(client, title="Private viewing")
    add(client, world.nikon)
    done = submit(client)
    assert "Private viewing" in text(client.get(done["Location"]))
    client.post("/portal/north/sign-out/")
    other = make_patron(world.library, person_id="P-2002", first_name="Alan", last_name="Turing")
    credentials.set_password(other, SECRET, actor=SYSTEM)
    assert sign_in(client, identifier="P-2002").status_code == 302
    client.post("/portal/north/center/", {"center": world.center.pk})
    later = client.get(done["Location"])
    assert later.status_code == 302
    assert "Private viewing" not in text(client.get(later["Location"]))
