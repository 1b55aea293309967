"""A staff member of one library can neither read nor change anything of another library.

The sweep walks every URL pattern of the staff pages and the REST API, so a new route is covered
the day it is added: a route whose URL parameters this test cannot fill fails the test until the
parameter is named in ``_CANDIDATES``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from patronage.api.models import ApiToken
from patronage.api.tokens import create_token
from patronage.blocks import services as blocks
from patronage.blocks.models import Block
from patronage.circulation import services as circulation
from patronage.circulation.models import Checkout, CheckoutItem
from patronage.core import clock
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.fines.models import Fee, Payment, PaymentAllocation, Waiver
from patronage.groups import services as groups
from patronage.groups.models import GroupMember, PatronGroup
from patronage.libraries.models import Branch, Library, Membership, Role
from patronage.libraries.permissions import Permission
from patronage.outbox import services as outbox
from patronage.outbox.models import OutboxMessage
from patronage.patrons.models import Address, Barcode, Patron, PatronType, Phone
from patronage.reservations import services as reservations
from patronage.reservations.models import CenterPolicy, Reservation, ReservationEvent, ReservationSeries
from patronage.resources import services as catalog
from patronage.resources.models import Authorization, Resource, ResourceType
from patronage.resourcesharing import clients as protocol_clients
from patronage.resourcesharing.models import ProtocolClient
from patronage.tickets import services as tickets
from patronage.tickets.models import Ticket, TicketComment
from patronage.updates import services as updates
from patronage.updates.models import UpdateRequest
from tests.factories import SYSTEM, make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db

SECRET_NAME = "Quixotegeheim"
SECRET_BARCODE = "99887766554433"
SECRET_EMAIL = "quixote.geheim@example.org"
SECRET_RESOURCE = "Geheimkamera"
# Routes that end the session or are the door in; they hold no library data.
_SKIPPED = {"staff:login", "staff:logout"}


@pytest.fixture
def world() -> dict[str, Any]:
    # Library B and its staff come first, so their rows take the low ids; library A's objects get
    # ids B owns nothing under, and a 200 can only mean a leak.
    library_b = make_library("libb")
    staff_b = make_staff(library_b, list(Permission), username="staff-b")
    token_b = create_token(user=staff_b, name="sweep", expires_at=None)[1]

    library_a = Library.objects.create(
        pk=5000, code="liba", name="Library A", currency="USD", time_zone="UTC", country="US"
    )
    Branch.objects.create(pk=5001, library=library_a, code="main", name="A main")
    PatronType.objects.create(pk=5002, library=library_a, code="adult", name="Adult")
    staff_a = make_staff(library_a, list(Permission), username="staff-a")
    create_token(user=staff_a, name="a-token", expires_at=None)
    patron = make_patron(
        library_a, barcode=SECRET_BARCODE, last_name=SECRET_NAME, primary_email=SECRET_EMAIL,
        phones={"mobile": "+1 202 555 0199"},
    )  # fmt: skip
    # The lending core of library A: a center with rules, a type, a resource, an authorization, reservations.
    center = Branch.objects.create(pk=5003, library=library_a, code="lab", name="A lab", is_checkout_center=True)
    reservations.save_center_policy(actor=SYSTEM, center=center, data={"min_lead_minutes": "0"})
    kind = catalog.save_resource_type(
        actor=SYSTEM, library=library_a, data={"name": "A's cameras", "centers": [center.pk]}
    )
    camera = catalog.save_resource(
        actor=SYSTEM, library=library_a,
        data={"identifier": "A-CAM-1", "name": SECRET_RESOURCE, "resource_type": kind.pk, "center": center.pk},
    )  # fmt: skip
    catalog.grant_authorization(actor=SYSTEM, patron=patron, resource_type=kind)
    soon = clock.now().replace(microsecond=0) + dt.timedelta(days=3)
    for hours in (0, 4):
        reservations.create_reservation(
            actor=SYSTEM, patron=patron, center=center, starts_at=soon + dt.timedelta(hours=hours),
            ends_at=soon + dt.timedelta(hours=hours + 2), lines=[{"resource": camera.pk}], title="A's class",
        )  # fmt: skip
    # A checkout of library A: the first reservation picked up at its start.
    with clock.frozen(soon + dt.timedelta(minutes=5)):
        circulation.check_out(
            actor=SYSTEM, reservation=Reservation.objects.filter(library=library_a).earliest("starts_at"),
            scanned=["A-CAM-1"],
        )  # fmt: skip
    # A series of library A: two weekly occurrences of the camera, a week after the single reservations.
    reservations.create_series(
        actor=SYSTEM, patron=patron, center=center, starts_at=soon + dt.timedelta(days=7),
        ends_at=soon + dt.timedelta(days=7, hours=2), repeat={"frequency": "weekly", "count": 2},
        lines=[{"resource": camera.pk}],
    )  # fmt: skip
    fee = fines.add_fee(actor=SYSTEM, patron=patron, amount="9.00", description="A's fee")
    fines.take_payment(actor=SYSTEM, patron=patron, amount="1.00", method="cash", idempotency_key="a-1")
    fines.waive_fee(actor=SYSTEM, fee=fee, reason="A's waiver", amount="1.00")
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="A's block")
    groups.create_group(actor=SYSTEM, patron=patron, data={"name": "A's family", "kind": "family"})
    protocol_clients.create_client(
        actor=SYSTEM,
        library=library_a,
        data={"name": "A's ReShare", "login": "a-reshare", "protocols": ["rest"], "allowed_networks": "0.0.0.0/0"},
    )
    # A failed outbox message of library A (its address is the patron's secret e-mail).
    failed = outbox.enqueue(kind="sweep", to=[SECRET_EMAIL], subject="A's notice", text="A's notice",
                            library=library_a, patron_id=patron.pk, wake=False)  # fmt: skip
    assert failed is not None
    OutboxMessage.objects.filter(pk=failed.pk).update(state="failed", last_error="550 refused")
    # A ticket of library A, reported by its patron, with a comment.
    problem = tickets.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "A's problem", "description": "A's problem"}
    )
    tickets.staff_comment(actor=SYSTEM, ticket=problem, body="A's problem noted")
    # An update request of library A's patron (a new e-mail address waiting for verification).
    updates.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "a-new@example.org"})
    return {"a": library_a, "b": library_b, "staff_b": staff_b, "token_b": token_b, "patron": patron}


def _snapshot(library: Library) -> dict[str, Any]:
    patrons = Patron.objects.filter(library=library)
    return {
        "library": Library.objects.filter(pk=library.pk).values().first(),
        "patrons": list(patrons.order_by("pk").values()),
        "barcodes": list(Barcode.objects.filter(library=library).order_by("pk").values()),
        "addresses": list(Address.objects.filter(patron__library=library).order_by("pk").values()),
        "phones": list(Phone.objects.filter(patron__library=library).order_by("pk").values()),
        "update_requests": list(UpdateRequest.objects.filter(library=library).order_by("pk").values()),
        "fees": list(Fee.objects.filter(library=library).order_by("pk").values()),
        "payments": list(Payment.objects.filter(library=library).order_by("pk").values()),
        "allocations": PaymentAllocation.objects.filter(payment__library=library).count(),
        "waivers": list(Waiver.objects.filter(library=library).order_by("pk").values()),
        "blocks": list(Block.objects.filter(library=library).order_by("pk").values()),
        "branches": list(Branch.objects.filter(library=library).order_by("pk").values()),
        "types": list(PatronType.objects.filter(library=library).order_by("pk").values()),
        "roles": list(Role.objects.filter(library=library).order_by("pk").values()),
        "memberships": list(Membership.objects.filter(library=library).order_by("pk").values("pk", "user_id")),
        "tokens": list(ApiToken.objects.filter(user__memberships__library=library).order_by("pk").values()),
        "protocol_clients": list(ProtocolClient.objects.filter(library=library).order_by("pk").values()),
        "resource_types": list(ResourceType.objects.filter(library=library).order_by("pk").values()),
        "resources": list(Resource.objects.filter(library=library).order_by("pk").values()),
        "authorizations": list(Authorization.objects.filter(patron__library=library).order_by("pk").values()),
        "policies": list(CenterPolicy.objects.filter(center__library=library).order_by("pk").values()),
        "reservations": list(Reservation.objects.filter(library=library).order_by("pk").values()),
        "reservation_events": ReservationEvent.objects.filter(reservation__library=library).count(),
        "checkouts": list(Checkout.objects.filter(library=library).order_by("pk").values()),
        "checkout_items": list(CheckoutItem.objects.filter(checkout__library=library).order_by("pk").values()),
        "groups": list(PatronGroup.objects.filter(library=library).order_by("pk").values()),
        "group_members": list(GroupMember.objects.filter(library=library).order_by("pk").values()),
        "outbox": list(OutboxMessage.objects.filter(library=library).order_by("pk").values()),
        "tickets": list(Ticket.objects.filter(library=library).order_by("pk").values()),
        "ticket_comments": TicketComment.objects.filter(ticket__library=library).count(),
    }


def _candidates(world: dict[str, Any]) -> dict[str, list[Any]]:
    """Values of library A for each kind of URL parameter."""
    library = world["a"]
    patron = world["patron"]

    def ids(queryset: Any) -> list[Any]:
        return list(queryset.values_list("pk", flat=True))

    kinds = {
        "patron": [patron.pk],
        "fee": ids(Fee.objects.filter(library=library)),
        "payment": ids(Payment.objects.filter(library=library)),
        "waiver": ids(Waiver.objects.filter(library=library)),
        "block": ids(Block.objects.filter(library=library)),
        "barcode": [SECRET_BARCODE, *ids(Barcode.objects.filter(library=library))],
        "branch": ids(Branch.objects.filter(library=library)),
        "center": ids(Branch.objects.filter(library=library, is_checkout_center=True)),
        "resource_type": ids(ResourceType.objects.filter(library=library)),
        "resource": ids(Resource.objects.filter(library=library)),
        "reservation": ids(Reservation.objects.filter(library=library)),
        "series": ids(ReservationSeries.objects.filter(library=library)),
        "checkout": ids(Checkout.objects.filter(library=library)),
        "group": ids(PatronGroup.objects.filter(library=library)),
        "type": ids(PatronType.objects.filter(library=library)),
        "role": ids(Role.objects.filter(library=library)),
        "membership": ids(Membership.objects.filter(library=library)),
        "library": [library.pk, library.code],
        "token": ids(ApiToken.objects.filter(user__memberships__library=library)),
        "client": ids(ProtocolClient.objects.filter(library=library)),
        "user": list(Membership.objects.filter(library=library).values_list("user_id", flat=True)),
        "event": ids(AuditEvent.objects.filter(library_id=library.pk)),
        "message": ids(OutboxMessage.objects.filter(library=library)),
        "ticket": ids(Ticket.objects.filter(library=library)),
        "update_request": ids(UpdateRequest.objects.filter(library=library)),
        "section": ["identity", "contact", "membership", "notes", "phones", "addresses", "barcodes"],
        "format": ["json"],
    }
    kinds["pk"] = sorted({v for k, vs in kinds.items() if k not in {"section", "format", "library"} for v in vs
                          if isinstance(v, int)})  # fmt: skip
    kinds["id"] = kinds["pk"]
    return kinds


def _walk(
    patterns: list[Any], namespace: str = "", params: tuple[str, ...] = ()
) -> Iterator[tuple[str, tuple[str, ...]]]:
    for entry in patterns:
        names = tuple(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, inner, params + names)
        elif isinstance(entry, URLPattern):
            if not namespace.startswith(("staff:", "api")) and not str(entry.pattern).startswith("api"):
                continue
            assert entry.name, f"route {entry.pattern} in {namespace!r} has no name; name it so it can be swept"
            yield f"{namespace}{entry.name}", params + names


def _kind(param: str, kinds: dict[str, list[Any]]) -> str:
    for kind in kinds:
        if param == kind or param.startswith(kind + "_") or param.endswith("_" + kind):
            return kind
    if param.endswith("_pk") or param.endswith("_id"):
        base = param.rsplit("_", 1)[0]
        if base in kinds:
            return base
    raise AssertionError(f"the sweep cannot fill the URL parameter {param!r}; add it to _candidates()")


def _urls(kinds: dict[str, list[Any]]) -> Iterator[tuple[str, str, bool]]:
    seen: set[str] = set()
    for name, params in _walk(get_resolver().url_patterns):
        if name in _SKIPPED:
            continue
        unique = tuple(dict.fromkeys(params))
        combos: list[dict[str, Any]] = [{}]
        for param in unique:
            combos = [dict(c, **{param: v}) for c in combos for v in kinds[_kind(param, kinds)]]
        for kwargs in combos:
            try:
                url = reverse(name, kwargs=kwargs)
            except Exception:  # noqa: BLE001 - a value of the wrong shape for this converter
                continue
            if url not in seen:
                seen.add(url)
                yield name, url, any(_kind(p, kinds) not in {"section", "format"} for p in kwargs)


def test_staff_of_another_library_can_neither_read_nor_change_anything(world: dict[str, Any]) -> None:
    before = _snapshot(world["a"])
    kinds = _candidates(world)
    client = Client(enforce_csrf_checks=False)
    api_auth = {"HTTP_AUTHORIZATION": f"Bearer {world['token_b']}"}
    leaks: list[str] = []
    swept = 0
    for name, url, has_a_id in _urls(kinds):
        is_api = url.startswith("/api/")
        for method in ("get", "post", "patch", "put", "delete"):
            client.force_login(world["staff_b"])
            body = {
                "comment": "sweep", "reason": "sweep", "amount": "1.00", "method": "cash", "kind": "other",
                "first_name": "Sweep", "last_name": "Sweep", "number": "55555555", "confirm": "yes",
                "name": "sweep", "library": str(world["a"].pk), "username": "staff-b",
            }  # fmt: skip
            extra: dict[str, Any] = dict(api_auth) if is_api else {}
            extra["HTTP_IDEMPOTENCY_KEY"] = f"sweep-{swept}"
            if method == "get":
                response = client.get(url, **extra)
            elif is_api:
                response = getattr(client, method)(url, data=body, content_type="application/json", **extra)
            elif method == "post":
                response = client.post(url, data=body, **extra)
            else:
                continue
            swept += 1
            content = b"" if response.streaming else response.content
            shown = any(
                s.encode() in content
                for s in (
                    SECRET_NAME,
                    SECRET_BARCODE,
                    SECRET_EMAIL,
                    SECRET_RESOURCE,
                    "A's fee",
                    "A's block",
                    "A's class",
                    "A's family",
                    "A's problem",
                )
            )
            if shown:
                leaks.append(f"{method.upper()} {url} ({name}) showed library A's data")
            if has_a_id and 200 <= response.status_code < 300:
                leaks.append(f"{method.upper()} {url} ({name}) answered {response.status_code} for library A's object")
    assert swept > 0
    assert not leaks, "\n".join(leaks)
    assert _snapshot(world["a"]) == before, "library A's data changed"


def test_the_sweep_reaches_the_patron_routes(world: dict[str, Any]) -> None:
    names = {name for name, _, _ in _urls(_candidates(world))}
    assert any(n.startswith("staff:patron") for n in names)
    assert any(n.startswith("api") and "patron" in n for n in names)


def test_staff_of_the_same_library_do_see_the_patron(world: dict[str, Any]) -> None:
    """The sweep's negative result means something: library A's own staff get the page."""
    client = Client()
    client.force_login(make_staff(world["a"], [Permission.VIEW_PATRONS], username="a-viewer"))
    response = client.get(reverse("staff:patron-detail", kwargs={"pk": world["patron"].pk}))
    assert response.status_code == 200
    assert SECRET_NAME.encode() in response.content
