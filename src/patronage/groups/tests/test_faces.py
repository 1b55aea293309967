"""Groups as staff, API clients and patrons see them: pages, endpoints, permissions and the portal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from patronage.api.tokens import create_token
from patronage.credentials import services as credentials
from patronage.fines import services as fines
from patronage.groups import queries, services
from patronage.groups.models import GroupMember, PatronGroup
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_branch, make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db
EVERYTHING = list(Permission)
VIEW_ONLY = [Permission.VIEW_PATRONS]


@pytest.fixture
def library() -> Library:
    library = make_library("home", name="Home Library")
    make_branch(library, "lab", name="Media Lab", is_checkout_center=True)
    return library


@pytest.fixture
def family(library: Library) -> tuple[PatronGroup, Patron, Patron]:
    parent = make_patron(library, first_name="Ada", last_name="Byron", barcode="30000001")
    child = make_patron(library, first_name="Annabella", last_name="Byron", barcode="30000002")
    group = services.create_group(actor=SYSTEM, patron=parent, data={"name": "Byron family", "kind": "family"})
    services.move_patron(actor=SYSTEM, group=group, patron=child)
    return group, parent, child


def staff(library: Library, permissions: list[Permission]) -> Client:
    client = Client()
    client.force_login(make_staff(library, permissions))
    return client


def page(name: str, patron: Patron, **kwargs: Any) -> str:
    return reverse(f"staff:{name}", kwargs={"pk": patron.pk, **kwargs})


# Staff pages


def test_member_details_list_each_member_with_limited_columns_and_actions(library, family) -> None:
    _group, parent, child = family
    fines.add_fee(actor=SYSTEM, patron=child, amount="5.01")
    fines.add_fee(actor=SYSTEM, patron=parent, amount="2.00")
    html = staff(library, EVERYTHING).get(page("patron-group", parent)).content.decode()
    assert "Group member details: Byron family" in html
    assert "Byron, Annabella" in html
    assert "30000002" in html
    assert "5.01 USD" in html
    assert "7.01 USD" in html
    assert 'data-standing="fines_over_limit"' in html
    assert 'data-standing="clear"' in html
    assert f'href="{page("patron-detail", child)}"' in html
    assert page("patron-group-remove", parent, patron_id=child.pk) in html
    # The patron summary shows both balances, and says the group's never blocks.
    summary = staff(library, VIEW_ONLY).get(page("patron-detail", parent)).content.decode()
    assert 'data-balance="own">2.00 USD' in summary
    assert 'data-balance="group">7.01 USD' in summary
    assert "it never blocks anyone" in summary
    assert page("patron-clone", parent) not in summary  # viewing only: no clone link


def test_move_another_patron_by_barcode_then_confirm(library, family) -> None:
    group, parent, _ = family
    other_group_member = make_patron(library, first_name="Charles", last_name="Babbage", barcode="30000009")
    elsewhere = services.create_group(actor=SYSTEM, patron=other_group_member, data={"name": "Babbage household"})
    client = staff(library, EVERYTHING)
    step = client.post(page("patron-group-move", parent), {"barcode": " 30000009 "})
    html = step.content.decode()
    assert step.status_code == 200
    assert "Babbage, Charles" in html
    assert "the group Babbage household" in html
    assert "Move user" in html
    assert queries.membership_of(other_group_member.pk).group_id == elsewhere.pk  # type: ignore[union-attr]
    done = client.post(
        page("patron-group-move", parent),
        {"confirm": "move", "group": group.pk, "patron": other_group_member.pk, "from_group": elsewhere.pk},
    )
    assert done.status_code == 302
    assert done["Location"] == page("patron-group", parent)
    assert queries.membership_of(other_group_member.pk).group_id == group.pk  # type: ignore[union-attr]
    assert not PatronGroup.objects.filter(pk=elsewhere.pk).exists()
    assert "Babbage, Charles" in client.get(page("patron-group", parent)).content.decode()


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("00000000", "No patron of Home Library has the barcode"),
        ("40000001", "No patron of Home Library has the barcode"),  # another library's card
        ("30000001", "already in this group"),
        ("", "Enter, scan or paste the barcode"),
    ],
)
def test_move_refusals_show_a_field_error_and_change_nothing(library, family, number, message) -> None:
    _, parent, _ = family
    make_patron(make_library("away"), barcode="40000001")
    before = list(GroupMember.objects.values_list("patron_id", "group_id"))
    response = staff(library, EVERYTHING).post(page("patron-group-move", parent), {"barcode": number})
    html = response.content.decode()
    assert response.status_code == 400
    assert message in html
    assert 'role="alert"' in html
    assert 'aria-invalid="true"' in html
    assert list(GroupMember.objects.values_list("patron_id", "group_id")) == before


def test_a_stale_confirmation_is_refused_with_a_message(library, family) -> None:
    group, parent, _ = family
    wanderer = make_patron(library, barcode="30000010")
    services.create_group(actor=SYSTEM, patron=wanderer, data={"name": "Meanwhile"})
    client = staff(library, EVERYTHING)
    response = client.post(
        page("patron-group-move", parent),
        {"confirm": "move", "group": group.pk, "patron": wanderer.pk, "from_group": ""},
        follow=True,
    )
    assert "moved by someone else meanwhile" in response.content.decode()
    assert queries.membership_of(wanderer.pk).group.name == "Meanwhile"  # type: ignore[union-attr]


def test_remove_role_and_clone_through_the_pages(library, family) -> None:
    group, parent, child = family
    client = staff(library, EVERYTHING)
    assert client.post(page("patron-group-role", parent, patron_id=parent.pk), {"role": "guardian"}).status_code == 302
    assert queries.membership_of(parent.pk).role == "guardian"  # type: ignore[union-attr]
    confirm = client.get(page("patron-group-remove", parent, patron_id=child.pk)).content.decode()
    assert "Remove Byron, Annabella from the group Byron family" in confirm
    assert client.post(page("patron-group-remove", parent, patron_id=child.pk)).status_code == 302
    assert queries.membership_of(child.pk) is None
    bad = client.post(page("patron-clone", parent), {"first_name": "", "last_name": "Byron"})
    assert bad.status_code == 400
    assert 'href="#f-first_name"' in bad.content.decode()
    assert Patron.objects.count() == 2
    made = client.post(page("patron-clone", parent), {"first_name": "Ralph", "last_name": "King", "barcode": ""})
    assert made.status_code == 302
    clone = Patron.objects.get(first_name="Ralph")
    assert queries.membership_of(clone.pk).group_id == group.pk  # type: ignore[union-attr]
    assert made["Location"] == page("patron-detail", clone)


def test_the_group_is_renamed_and_its_kind_changed_from_any_members_page(library, family) -> None:
    group, _parent, child = family
    client = staff(library, EVERYTHING)
    form = client.get(page("patron-group", child)).content.decode()
    assert 'value="Byron family"' in form
    bad = client.post(page("patron-group", child), {"name": "", "kind": "family"})
    assert bad.status_code == 400
    assert 'href="#f-name"' in bad.content.decode()
    saved = client.post(page("patron-group", child), {"name": "Byron-King household", "kind": "household"})
    assert saved.status_code == 302
    group.refresh_from_db()
    assert (group.name, group.kind) == ("Byron-King household", "household")
    assert PatronGroup.objects.count() == 1  # renamed, not a second group


def test_every_group_change_on_the_pages_needs_edit_patron_data(library, family) -> None:
    _group, parent, child = family
    viewer = staff(library, VIEW_ONLY)
    assert viewer.get(page("patron-group", parent)).status_code == 200
    attempts = [
        (page("patron-group", child), {"name": "x", "kind": "family"}),
        (page("patron-group-move", parent), {"barcode": "30000002"}),
        (page("patron-group-remove", parent, patron_id=child.pk), {}),
        (page("patron-group-role", parent, patron_id=child.pk), {"role": "guardian"}),
        (page("patron-clone", parent), {"first_name": "A", "last_name": "B"}),
    ]
    for url, body in attempts:
        assert viewer.post(url, body).status_code == 403, url
    for url in (page("patron-group-move", parent), page("patron-clone", parent)):
        assert viewer.get(url).status_code == 403, url
    assert GroupMember.objects.count() == 2
    assert Patron.objects.count() == 2
    assert queries.membership_of(child.pk).role == ""  # type: ignore[union-attr]


# REST API


class Api:
    def __init__(self, library: Library, permissions: list[Permission]) -> None:
        token = create_token(user=make_staff(library, permissions), name="t", expires_at=None)[1]
        self.client = Client()
        self.auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def __call__(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        if method == "get":
            response = self.client.get(url, **self.auth)
        else:
            response = getattr(self.client, method)(
                url, data=json.dumps(body or {}), content_type="application/json", **self.auth
            )
        return response.status_code, response.json() if response.content else None


def test_the_api_creates_reads_moves_and_removes(library, family) -> None:
    group, parent, child = family
    api = Api(library, EVERYTHING)
    loner = make_patron(library, barcode="30000020")
    fines.add_fee(actor=SYSTEM, patron=child, amount="3.00")
    code, body = api("get", f"/api/v1/groups/{group.pk}/")
    assert code == 200
    assert body["balance"] == "3.00"
    assert body["member_count"] == 2
    assert {m["barcode"] for m in body["members"]} == {"30000001", "30000002"}
    assert {m["patron"]: m["standing"] for m in body["members"]} == {parent.pk: [], child.pk: []}
    code, body = api("post", f"/api/v1/groups/{group.pk}/members/", {"barcode": "30000020", "from_group": None})
    assert code == 201
    assert body["member_count"] == 3
    code, body = api("post", f"/api/v1/groups/{group.pk}/members/", {"barcode": "30000020"})
    assert code == 409
    assert body["code"] == "already_in_group"
    code, body = api("patch", f"/api/v1/groups/{group.pk}/members/{parent.pk}/", {"role": "guardian"})
    assert code == 200
    assert [m["role"] for m in body["members"] if m["patron"] == parent.pk] == ["guardian"]
    code, _ = api("delete", f"/api/v1/groups/{group.pk}/members/{loner.pk}/")
    assert code == 204
    assert queries.membership_of(loner.pk) is None
    code, body = api("get", f"/api/v1/patrons/{loner.pk}/group/")
    assert code == 200
    assert body == {"group": None}
    code, body = api("post", "/api/v1/groups/", {"patron": loner.pk, "name": "Solo", "kind": "organisation"})
    assert code == 201
    assert body["kind"] == "organisation"
    code, body = api("post", f"/api/v1/patrons/{loner.pk}/clone/", {"first_name": "Second", "last_name": "Solo"})
    assert code == 201
    assert body["group"]["member_count"] == 2
    code, body = api("get", f"/api/v1/groups/?library={library.code}")
    assert code == 200
    assert sorted(g["name"] for g in body) == ["Byron family", "Solo"]


def test_the_api_refuses_bad_input_with_field_errors_and_codes(library, family) -> None:
    group, parent, _child = family
    make_patron(make_library("away"), barcode="40000001")
    api = Api(library, EVERYTHING)
    code, body = api("post", f"/api/v1/groups/{group.pk}/members/", {"barcode": "40000001"})
    assert code == 400
    assert body["code"] == "barcode_unknown"
    assert "barcode" in body["errors"]
    code, body = api("post", f"/api/v1/groups/{group.pk}/members/", {"barcode": "30000002", "from_group": 999})
    assert code == 409
    assert body["code"] in {"membership_changed", "already_in_group"}
    code, body = api("post", "/api/v1/groups/", {"patron": parent.pk, "name": "", "kind": "tribe"})
    assert code == 400
    assert set(body["errors"]) == {"name", "kind"}
    code, body = api("post", f"/api/v1/patrons/{parent.pk}/clone/", {"first_name": "", "last_name": "X"})
    assert code == 400
    assert "first_name" in body["errors"]
    assert Patron.objects.filter(library=library).count() == 2


def test_the_api_checks_permissions_on_every_group_action(library, family) -> None:
    group, parent, child = family
    viewer = Api(library, VIEW_ONLY)
    assert viewer("get", f"/api/v1/groups/{group.pk}/")[0] == 200
    assert viewer("get", f"/api/v1/patrons/{parent.pk}/group/")[0] == 200
    writes = [
        ("post", "/api/v1/groups/", {"patron": child.pk, "name": "x"}),
        ("patch", f"/api/v1/groups/{group.pk}/", {"name": "Renamed"}),
        ("post", f"/api/v1/groups/{group.pk}/members/", {"barcode": "30000002"}),
        ("patch", f"/api/v1/groups/{group.pk}/members/{child.pk}/", {"role": "guardian"}),
        ("delete", f"/api/v1/groups/{group.pk}/members/{child.pk}/", None),
        ("post", f"/api/v1/patrons/{parent.pk}/clone/", {"first_name": "A", "last_name": "B"}),
    ]
    for method, url, body in writes:
        code, problem = viewer(method, url, body)
        assert (code, problem["code"]) == (403, "permission_denied"), (method, url)
    stranger = Api(make_library("away"), EVERYTHING)
    assert stranger("get", f"/api/v1/groups/{group.pk}/")[1]["code"] == "group_not_found"
    assert PatronGroup.objects.get().name == "Byron family"
    assert GroupMember.objects.count() == 2


# Portal: My Groups

SECRET = "plum-orchard-41-lantern"


def portal(patron: Patron, identifier: str) -> Client:
    credentials.set_password(patron, SECRET, actor=SYSTEM)
    client = Client()
    assert client.post("/portal/home/sign-in/", {"identifier": identifier, "password": SECRET}).status_code == 302
    return client


def test_a_guardian_sees_members_balances_and_others_see_only_names(library, family) -> None:
    group, parent, child = family
    services.set_role(actor=SYSTEM, group=group, patron=parent, role="guardian")
    fines.add_fee(actor=SYSTEM, patron=child, amount="4.25")
    guardian_view = portal(parent, "30000001").get("/portal/home/").content.decode()
    assert "My Groups" in guardian_view
    assert "Byron family" in guardian_view
    assert "Annabella Byron" in guardian_view
    assert "Balance: 4.25 USD" in guardian_view
    assert "Nothing checked out." in guardian_view
    member_view = portal(child, "30000002").get("/portal/home/").content.decode()
    assert "Byron family" in member_view
    assert "Ada Byron" in member_view
    assert "Balance:" not in member_view
    assert "checked out" not in member_view


def test_a_patron_in_no_group_is_told_so(library) -> None:
    alone = make_patron(library, barcode="30000050")
    html = portal(alone, "30000050").get("/portal/home/").content.decode()
    assert "You are not in a group." in html
