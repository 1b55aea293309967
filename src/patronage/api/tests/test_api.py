"""The REST API as a client sees it: tokens, permissions, problem documents and every patron action."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from patronage.api.models import ApiToken
from patronage.api.tokens import create_token, revoke_token, user_for_token
from patronage.blocks import services as blocks
from patronage.core import clock
from patronage.core.audit import Actor
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.fines.models import Payment
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Barcode, Patron
from tests.factories import SYSTEM, make_branch, make_library, make_patron, make_patron_type, make_staff

pytestmark = pytest.mark.django_db


class Api:
    """A client that sends a bearer token and JSON, and decodes the answer."""

    def __init__(self, token: str) -> None:
        self.client = Client()
        self.auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def call(self, method: str, url: str, body: Any = None, **headers: str) -> tuple[int, Any, Any]:
        extra: dict[str, Any] = dict(
            self.auth, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        )
        if method == "get":
            response = self.client.get(url, body or {}, **extra)
        else:
            response = getattr(self.client, method)(
                url, data=json.dumps(body or {}), content_type="application/json", **extra
            )
        data = json.loads(response.content) if response.content else None
        return response.status_code, data, response


@pytest.fixture
def library() -> Any:
    library = make_library("river", name="Riverside")
    make_branch(library, "main")
    make_patron_type(library, "adult")
    return library


def api_for(library: Any, permissions: Any = tuple(Permission), username: str = "clerk") -> Api:
    user = make_staff(library, permissions, username=username)
    return Api(create_token(user=user, name="test client", expires_at=None)[1])


def test_a_request_without_a_token_gets_401_as_a_problem_document(library: Any) -> None:
    response = Client().get("/api/v1/patrons/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_or_expired_token_stops_working(library: Any) -> None:
    user = make_staff(library, [Permission.VIEW_PATRONS], username="kiosk")
    token, raw = create_token(user=user, name="kiosk", expires_at=None)
    assert Api(raw).call("get", "/api/v1/me/")[0] == 200
    revoke_token(actor=Actor(user=user), token_id=token.pk)
    status, body, _ = Api(raw).call("get", "/api/v1/me/")
    assert status == 401
    assert "revoked" in body["detail"]
    soon = clock.now() + dt.timedelta(minutes=1)
    short, raw2 = create_token(user=user, name="short", expires_at=soon)
    ApiToken.objects.filter(pk=short.pk).update(expires_at=clock.now() - dt.timedelta(seconds=1))
    assert Api(raw2).call("get", "/api/v1/me/")[0] == 401


def test_only_a_digest_of_the_token_is_stored(library: Any) -> None:
    user = make_staff(library, [], username="x")
    token, raw = create_token(user=user, name="n", expires_at=None)
    assert raw.startswith("pat_")
    assert raw not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert user_for_token(raw) == (user, token) or user_for_token(raw)[0] == user  # type: ignore[index]


def test_repeated_wrong_tokens_from_one_address_are_locked_out(library: Any, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 3
    wrong = Api("pat_not-a-real-token")
    statuses = [wrong.call("get", "/api/v1/me/")[0] for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    _, body, response = wrong.call("get", "/api/v1/me/")
    assert body["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_me_lists_libraries_with_the_permissions_held_there(library: Any) -> None:
    api = api_for(library, [Permission.VIEW_PATRONS, Permission.TAKE_PAYMENTS])
    status, body, _ = api.call("get", "/api/v1/me/")
    assert status == 200
    assert body["username"] == "clerk"
    assert body["token"]["name"] == "test client"
    [lib] = body["libraries"]
    assert lib["code"] == "river"
    assert lib["permissions"] == ["take_payments", "view_patrons"]
    assert [t["code"] for t in lib["patron_types"]] == ["adult"]


def test_search_finds_by_barcode_and_name_and_pages(library: Any) -> None:
    for n in range(3):
        make_patron(library, last_name=f"Smith{n}", barcode=f"3100000000{n}")
    make_patron(library, last_name="Jones", barcode="31000000099")
    api = api_for(library)
    status, body, _ = api.call("get", "/api/v1/patrons/", {"q": "smith", "page_size": 2})
    assert status == 200
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]
    assert [r["last_name"] for r in body["results"]] == ["Smith0", "Smith1"]
    status, body, _ = api.call("get", "/api/v1/patrons/", {"q": "31000000099"})
    assert [r["last_name"] for r in body["results"]] == ["Jones"]
    assert body["results"][0]["barcode"] == "31000000099"
    status, body, _ = api.call("get", "/api/v1/patrons/", {"sort": "height"})
    assert status == 400
    assert "sort" in body["errors"]


def test_create_read_update_a_patron(library: Any) -> None:
    api = api_for(library)
    status, body, _ = api.call(
        "post", "/api/v1/patrons/",
        {"library": "river", "first_name": "Zoë", "last_name": "Ørsted", "patron_type": "adult",
         "registered_branch": "main", "barcode": "41000000001", "phones": {"mobile": "(202) 555-0147"},
         "addresses": [{"kind": "home", "line1": "1 Elm St", "city": "Springfield", "postal_code": "12345"}]},
    )  # fmt: skip
    assert status == 201, body
    pk = body["id"]
    assert body["barcode"] == "41000000001"
    assert body["phones"] == {"mobile": "+12025550147"}
    assert body["standing"]["clear"] is True
    assert body["standing"]["decisions"]["check_out"]["allowed"] is True
    status, body, _ = api.call(
        "patch", f"/api/v1/patrons/{pk}/", {"primary_email": "zoe@example.org", "staff_notes": "n"}
    )
    assert status == 200
    assert body["primary_email"] == "zoe@example.org"
    assert body["first_name"] == "Zoë"
    status, body, _ = api.call("get", f"/api/v1/patrons/{pk}/")
    assert status == 200
    assert body["addresses"][0]["city"] == "Springfield"
    assert AuditEvent.objects.filter(action="patron.read", patron_id=pk, channel="api").exists()


def test_a_bad_update_reports_every_field_and_changes_nothing(library: Any) -> None:
    patron = make_patron(library, first_name="Ada", primary_email="ada@example.org")
    api = api_for(library)
    status, body, response = api.call(
        "patch", f"/api/v1/patrons/{patron.pk}/",
        {"first_name": "Augusta", "primary_email": "not-an-address", "patron_type": "nope", "phones": {"home": "12"}},
    )  # fmt: skip
    assert status == 400
    assert response["Content-Type"] == "application/problem+json"
    assert set(body["errors"]) == {"primary_email", "patron_type", "phone_home"}
    patron.refresh_from_db()
    assert patron.first_name == "Ada"
    assert patron.primary_email == "ada@example.org"
    status, body, _ = api.call("patch", f"/api/v1/patrons/{patron.pk}/", {"shoe_size": 9})
    assert status == 400
    assert "shoe_size" in body["errors"]


def test_creating_at_a_library_without_the_permission_is_not_found(library: Any) -> None:
    other = make_library("hill")
    make_staff(other, list(Permission), username="hill-admin")
    api = api_for(library, [Permission.VIEW_PATRONS])
    for target in ("river", "hill", str(other.pk)):
        status, body, _ = api.call("post", "/api/v1/patrons/", {"library": target, "first_name": "A", "last_name": "B"})
        assert status == 404, body
    assert not Patron.objects.exists()


def test_each_action_needs_its_own_permission(library: Any) -> None:
    patron = make_patron(library)
    fee = fines.add_fee(actor=SYSTEM, patron=patron, amount="3.00")
    viewer = api_for(library, [Permission.VIEW_PATRONS], username="viewer")
    pk = patron.pk
    attempts = [
        ("patch", f"/api/v1/patrons/{pk}/", {"staff_notes": "x"}),
        ("delete", f"/api/v1/patrons/{pk}/", None),
        ("get", f"/api/v1/patrons/{pk}/export/", None),
        ("post", f"/api/v1/patrons/{pk}/barcodes/", {"number": "55550000"}),
        ("post", f"/api/v1/patrons/{pk}/fees/", {"amount": "1.00"}),
        ("post", f"/api/v1/patrons/{pk}/payments/", {"amount": "1.00", "method": "cash"}),
        ("post", f"/api/v1/patrons/{pk}/fees/{fee.pk}/waivers/", {"reason": "x"}),
        ("post", f"/api/v1/patrons/{pk}/blocks/", {"comment": "x"}),
        ("post", f"/api/v1/patrons/{pk}/unblock/", {"comment": "x"}),
    ]
    for method, url, body in attempts:
        status, answer, _ = viewer.call(method, url, body, **{"Idempotency-Key": "k1"})
        assert status == 403, (method, url, answer)
        assert answer["code"] == "permission_denied"
    assert viewer.call("get", f"/api/v1/patrons/{pk}/")[0] == 200
    assert Payment.objects.count() == 0
    assert Patron.objects.filter(pk=pk).exists()


def test_payments_are_idempotent_and_applied_oldest_first(library: Any) -> None:
    patron = make_patron(library)
    first = fines.add_fee(actor=SYSTEM, patron=patron, amount="4.00")
    second = fines.add_fee(actor=SYSTEM, patron=patron, amount="6.00")
    api = api_for(library)
    url = f"/api/v1/patrons/{patron.pk}/payments/"
    status, body, _ = api.call("post", url, {"amount": "5.00", "method": "cash"}, **{"Idempotency-Key": "till-7"})
    assert status == 201
    assert body["allocations"] == [{"fee": first.pk, "amount": "4.00"}, {"fee": second.pk, "amount": "1.00"}]
    status, again, _ = api.call("post", url, {"amount": "5.00", "method": "cash"}, **{"Idempotency-Key": "till-7"})
    assert status == 200
    assert again["id"] == body["id"]
    status, clash, _ = api.call("post", url, {"amount": "2.00", "method": "cash"}, **{"Idempotency-Key": "till-7"})
    assert status == 409
    assert clash["code"] == "idempotency_key_reused"
    status, missing, _ = api.call("post", url, {"amount": "1.00", "method": "cash"})
    assert status == 400
    assert "Idempotency-Key" in missing["errors"]
    status, over, _ = api.call("post", url, {"amount": "99.00", "method": "cash"}, **{"Idempotency-Key": "till-8"})
    assert status == 400
    assert "balance" in over["errors"]["amount"][0]
    status, account, _ = api.call("get", f"/api/v1/patrons/{patron.pk}/account/")
    assert account["balance"] == "5.00"
    assert Payment.objects.count() == 1
    assert [f["outstanding"] for f in account["fees"]] == ["0.00", "5.00"]


def test_fees_over_the_limit_show_in_standing_and_a_waiver_clears_them(library: Any) -> None:
    patron = make_patron(library)
    api = api_for(library)
    status, fee, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/fees/", {"amount": "5.01", "kind": "other"})
    assert status == 201
    assert fee["outstanding"] == "5.01"
    status, standing, _ = api.call("get", f"/api/v1/patrons/{patron.pk}/standing/")
    assert [c["code"] for c in standing["conditions"]] == ["fines_over_limit"]
    assert standing["decisions"]["check_out"] == {"allowed": False, "reasons": ["fines_over_limit"]}
    assert standing["decisions"]["portal_login"]["allowed"] is True
    status, waiver, _ = api.call(
        "post", f"/api/v1/patrons/{patron.pk}/fees/{fee['id']}/waivers/", {"reason": "goodwill", "amount": "0.01"}
    )
    assert status == 201
    assert waiver["amount"] == "0.01"
    assert api.call("get", f"/api/v1/patrons/{patron.pk}/standing/")[1]["clear"] is True


def test_block_and_unblock_with_comments(library: Any) -> None:
    patron = make_patron(library)
    api = api_for(library)
    status, body, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/blocks/", {"comment": ""})
    assert status == 400
    assert "comment" in body["errors"]
    status, block, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/blocks/", {"comment": "Damaged laptop"})
    assert status == 201
    assert block["comment"] == "Damaged laptop"
    status, body, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/blocks/", {"comment": "again"})
    assert status == 409
    standing = api.call("get", f"/api/v1/patrons/{patron.pk}/standing/")[1]
    assert standing["conditions"][0]["code"] == "blocked_by_staff"
    status, lifted, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/unblock/", {"comment": "Repaired"})
    assert status == 200
    assert lifted[0]["lift_comment"] == "Repaired"
    assert api.call("get", f"/api/v1/patrons/{patron.pk}/standing/")[1]["clear"] is True


def test_delete_is_refused_with_reasons_while_money_is_owed(library: Any) -> None:
    patron = make_patron(library)
    fines.add_fee(actor=SYSTEM, patron=patron, amount="2.00")
    api = api_for(library)
    status, body, _ = api.call("delete", f"/api/v1/patrons/{patron.pk}/")
    assert status == 409
    assert body["code"] == "deletion_refused"
    assert body["reasons"]
    fines.take_payment(actor=SYSTEM, patron=patron, amount="2.00", method="cash", idempotency_key="k")
    status, _, _ = api.call("delete", f"/api/v1/patrons/{patron.pk}/")
    assert status == 204
    assert not Patron.objects.filter(pk=patron.pk).exists()
    assert api.call("get", f"/api/v1/patrons/{patron.pk}/")[0] == 404


def test_export_returns_every_section_and_is_audited(library: Any) -> None:
    patron = make_patron(library, last_name="Exportable")
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="for the export")
    api = api_for(library)
    status, body, _ = api.call("get", f"/api/v1/patrons/{patron.pk}/export/")
    assert status == 200
    assert body["patron"]["last_name"] == "Exportable"
    assert body["blocks"][0]["comment"] == "for the export"
    assert body["barcodes"]
    assert AuditEvent.objects.filter(action="patron.exported", patron_id=patron.pk, channel="api").count() == 1


def test_a_new_barcode_keeps_the_old_as_history(library: Any) -> None:
    patron = make_patron(library, barcode="61000000001")
    api = api_for(library)
    status, body, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/barcodes/", {"number": "61000000002"})
    assert status == 201
    assert body["is_active"] is True
    numbers = dict(Barcode.objects.filter(patron=patron).values_list("number", "is_active"))
    assert numbers == {"61000000001": False, "61000000002": True}
    status, body, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/barcodes/", {"number": "61000000001"})
    assert status == 400
    assert "barcode" in body["errors"]


def test_malformed_bodies_get_a_clear_problem(library: Any) -> None:
    patron = make_patron(library)
    api = api_for(library)
    response = api.client.post(
        f"/api/v1/patrons/{patron.pk}/fees/", data="{not json", content_type="application/json", **api.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    status, body, _ = api.call("post", f"/api/v1/patrons/{patron.pk}/fees/", {"amount": "abc"})
    assert status == 400
    assert "amount" in body["errors"]
    assert Decimal(api.call("get", f"/api/v1/patrons/{patron.pk}/account/")[1]["balance"]) == 0


def test_the_published_schema_is_current(library: Any) -> None:
    """docs/openapi.yaml is what the code generates; regenerate it with `patronage spectacular --file docs/openapi.yaml`."""
    from pathlib import Path

    from django.core.management import call_command

    target = Path(__file__).resolve().parents[4] / "docs" / "openapi.yaml"
    out = Path(__file__).resolve().parent / "_generated_openapi.yaml"
    try:
        call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
        assert target.read_text() == out.read_text(), "docs/openapi.yaml is stale; regenerate it"
    finally:
        out.unlink(missing_ok=True)


def test_the_schema_and_docs_pages_are_served(library: Any) -> None:
    api = api_for(library)
    response = api.client.get("/api/schema/", **api.auth)
    assert response.status_code == 200
    assert b"/api/v1/patrons/{id}/" in response.content
    client = Client()
    client.force_login(make_staff(library, [], username="reader"))
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert b"swagger" in page.content.lower()


def test_patron_types_are_listed_and_configured_with_the_configure_permission(library: Any) -> None:
    admin = api_for(library, [Permission.VIEW_PATRONS, Permission.CONFIGURE_LIBRARY], username="admin")
    status, created, _ = admin.call(
        "post", "/api/v1/patron-types/", {"library": "river", "code": "child", "name": "Child", "fine_limit": "2.00"}
    )
    assert status == 201, created
    assert created["fine_limit"] == "2.00"
    status, body, _ = admin.call("patch", f"/api/v1/patron-types/{created['id']}/", {"fine_limit": "-1"})
    assert status == 400
    assert "fine_limit" in body["errors"]
    status, body, _ = admin.call("patch", f"/api/v1/patron-types/{created['id']}/", {"may_use_ill": True})
    assert status == 200
    assert body["may_use_ill"] is True
    codes = [t["code"] for t in admin.call("get", "/api/v1/patron-types/")[1]]
    assert codes == ["adult", "child"]
    clerk = api_for(library, [Permission.VIEW_PATRONS], username="clerk2")
    status, _, _ = clerk.call("patch", f"/api/v1/patron-types/{created['id']}/", {"name": "Kids"})
    assert status == 404
    status, _, _ = clerk.call("post", "/api/v1/patron-types/", {"library": "river", "code": "x", "name": "X"})
    assert status == 404
