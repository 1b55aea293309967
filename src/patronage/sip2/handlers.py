"""What each SIP2 request does: translate it into service calls and the answer into a response.

No rules live here. A patron is found the way the portal finds one (``credentials.find_patron``: Person-ID
or current barcode, at the client's library only), a patron password is checked by the portal's own
``credentials.verify_password`` (one lock-out counter for every sign-in), the status flags and screen
messages come from ``standing`` (the same reasons as every other face), and every change goes through the
circulation, fines and blocks services. Every request that reads a patron is audited with the client.
What a request without the patron's right PIN gets, and which extension fields 64 carries, are the client's
settings (``ProtocolClient.patron_pin_required``, ``sip2_extension_fields``; docs/subsystems/sip2.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

from patronage.blocks import services as blocks
from patronage.circulation import queries as circulation_queries
from patronage.circulation import services as desk
from patronage.core import audit, clock
from patronage.core.errors import DomainError, Refused
from patronage.credentials import services as credentials
from patronage.fines import services as fines
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.reservations import queries as reservation_queries
from patronage.resources.models import Resource
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import Protocol, ProtocolClient
from patronage.standing import queries as standing_queries
from patronage.standing import rules as standing_rules
from patronage.standing.rules import Action, Condition, PatronFacts, Standing

from . import wire
from .wire import Request, Response, count, flags, sip_date, yes

log = logging.getLogger(__name__)

CHANNEL = "sip2"
# 16 flags: patron status, checkout, checkin, block patron, SC/ACS status, resend, login, patron info,
# end patron session, fee paid, item info, item status update, patron enable, hold, renew, renew all.
SUPPORTED = "YYYYYYYYYYYNNNYN"
LIST_MAX = 50  # entries of one summary list per answer
# 98's "timeout period": how long a terminal may wait for one answer before it gives the transaction up, in
# tenths of a second (000 would mean "off-line"). Our answers take milliseconds; 30 s covers a stalled database.
TRANSACTION_TIMEOUT = "300"
_PAYMENT_METHODS = {"00": "cash", "01": "card", "02": "card"}
WRONG_PIN = "The card number or PIN is not right."


@dataclass
class Session:
    """One connection: who logged in, its character set, error detection and the last answer (for 97)."""

    address: str | None
    client: ProtocolClient | None = None
    location: str = ""
    encoding: str = "cp850"
    last: Response | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(user=None, channel=CHANNEL, source_ip=self.address)


@dataclass(frozen=True)
class PatronView:
    """The patron a request names, and what the client may do with them.

    ``authenticated``: the request may act for the patron (check out, renew, pay): their right PIN, or, when
    the client does not require PINs, no PIN or an empty one. ``withheld``: the patron was found, the client
    requires PINs and the request has no right one, so the answer gives nothing beyond the status flags.
    A wrong PIN to a client that does not require PINs is neither: refused to act, details as without a PIN.
    """

    patron: Patron | None
    facts: PatronFacts | None
    standing: Standing | None
    password_given: bool
    password_ok: bool
    notes: tuple[str, ...] = ()
    authenticated: bool = False
    withheld: bool = False

    @property
    def valid(self) -> bool:
        return self.patron is not None

    @property
    def details(self) -> bool:
        """Whether the answer may carry the patron's name, amounts, lists and extension fields."""
        return self.patron is not None and not self.withheld


def _zone(session: Session) -> ZoneInfo:
    assert session.client is not None  # noqa: S101 - only called after login
    return ZoneInfo(session.client.library.time_zone)


def _now_text(session: Session) -> str:
    zone = _zone(session) if session.client is not None else ZoneInfo(settings.TIME_ZONE or "UTC")
    return sip_date(clock.now(), zone)


def _institution(session: Session) -> str:
    return session.client.library.code if session.client is not None else ""


def _language(req: Request) -> str:
    text = req.fixed[:3]
    return text if text.isdigit() else "000"


def _audit_read(session: Session, req: Request, patron: Patron | None, identifier: str, pin: str) -> None:
    """The read's audit event, with the patron PIN's outcome (``pin``: empty when none was sent). A refused
    PIN is a security event and waits for the disk like a change; a plain read does not (``record_read``)."""
    assert session.client is not None  # noqa: S101
    write = audit.record if pin in {"wrong", "locked"} else audit.record_read
    write(
        session.actor, "patron.sip2_read", library_id=session.client.library_id,
        patron_id=patron.pk if patron else None, patron_label=patron.display_name if patron else "",
        client_id=session.client.pk, client_name=session.client.name, message=req.code,
        found=patron is not None, identifier=identifier[:64] if patron is None else "", pin=pin,
    )  # fmt: skip


def _patron(session: Session, req: Request) -> PatronView:
    """The patron AA names at the client's library, their standing, and the AD check when AD was sent."""
    assert session.client is not None  # noqa: S101
    identifier = req.get("AA").strip()
    institution = req.get("AO").strip()
    library = session.client.library
    patron = None
    if identifier and (not institution or institution == library.code):
        patron = credentials.find_patron(library.pk, identifier)
    given = req.has("AD")
    password_ok, pin = False, ""
    notes: tuple[str, ...] = ()
    if patron is not None and given:
        password_ok, notes, pin = _check_password(session, library.pk, identifier, req.get("AD"))
    _audit_read(session, req, patron, identifier, pin)
    if patron is None:
        return PatronView(None, None, None, given, False)
    facts = standing_queries.facts_for(patron.pk, clock.now())
    if facts is None:
        return PatronView(None, None, None, given, False)
    required = session.client.patron_pin_required
    # Without a PIN requirement the client vouches for its patrons: no AD, or an empty one, is accepted.
    authenticated = password_ok or (not required and not req.get("AD"))
    return PatronView(
        patron, facts, standing_rules.standing(facts), given, password_ok, notes,
        authenticated=authenticated, withheld=required and not authenticated,
    )  # fmt: skip


def _check_password(
    session: Session, library_id: int, identifier: str, password: str
) -> tuple[bool, tuple[str, ...], str]:
    """The portal's password check and lock-out: (valid, screen messages, the outcome for the audit log).
    An empty AD is "not valid" and counts as no attempt."""
    if not password:
        return False, (), "empty"
    try:
        credentials.verify_password(
            library_id, identifier, password, session.address, client=session.client.login if session.client else None
        )
    except credentials.SignInLocked as exc:
        return False, (exc.message,), "locked"
    except credentials.DirectoryUnavailable as exc:
        return False, (exc.message,), "directory_down"
    except credentials.SignInFailed:
        return False, (), "wrong"
    return True, (), "ok"


def _status_flags(view: PatronView) -> str:
    if view.standing is None:
        return flags([True, True, True, True] + [False] * 10)
    st = view.standing
    codes = set(st.codes)

    def denied(action: Action) -> bool:
        return not st.decision(action).allowed

    return flags(
        [
            denied(Action.CHECK_OUT),  # charge privileges denied
            denied(Action.RENEW),
            denied(Action.RESERVE),  # recall: we have none; the nearest right is reserving
            denied(Action.RESERVE),  # hold privileges denied
            Condition.NO_ACTIVE_BARCODE.value in codes,  # card reported lost (no active card)
            False,  # too many items charged: no loan limits yet
            Condition.LATE_RESOURCES.value in codes,
            False,
            False,
            False,
            Condition.FINES_OVER_LIMIT.value in codes,
            Condition.OVERDUE_INVOICE.value in codes,
            False,
            False,
        ]
    )


def _screen_messages(view: PatronView) -> list[str]:
    if view.patron is None:
        return ["Card not recognised. Ask at the desk."]
    messages = list(view.notes)
    if not view.authenticated and not view.notes:
        messages.append(WRONG_PIN)
    if view.withheld:  # the standing reasons would tell a stranger about the patron's fines and loans
        return messages
    if view.standing is not None:
        messages += [f"{r.patron_message} {r.remedy}".strip() for r in view.standing.conditions]
    return messages


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _patron_fields(resp: Response, session: Session, req: Request, view: PatronView) -> None:
    resp.add("AO", _institution(session))
    resp.add("AA", req.get("AA"))
    resp.add("AE", view.patron.display_name if view.details and view.patron else "")


def _bl_cq(resp: Response, view: PatronView) -> None:
    """BL always; CQ whenever AD was sent, for an unknown card, and whenever the client requires a PIN and
    has no right one (a missing CQ reads as "accepted" to some clients)."""
    resp.add("BL", yes(view.valid))
    if view.password_given or not view.valid or view.withheld:
        resp.add("CQ", yes(view.valid and view.authenticated))


# --- messages ----------------------------------------------------------------------------------------------


def login(session: Session, req: Request) -> Response:
    ok = False
    if req.fixed[:2] in {"00", "  ", ""}:
        try:
            session.client = clients.authenticate_client(Protocol.SIP2, req.get("CN"), req.get("CO"), session.address)
        except (clients.ClientAuthenticationFailed, clients.ClientLocked):
            session.client = None
        else:
            ok = True
            session.encoding = session.client.charset
            session.location = req.get("CP").strip()
    return Response("94", "1" if ok else "0")


def sc_status(session: Session, req: Request) -> Response:
    fixed = "YYYYNN" + TRANSACTION_TIMEOUT + "003" + _now_text(session) + "2.00"
    resp = Response("98", fixed).add("AO", _institution(session))
    if session.client is not None:
        resp.add("AM", session.client.library.name)
    resp.add("BX", SUPPORTED)
    if session.location:
        resp.add("AN", session.location)
    return resp


def patron_status(session: Session, req: Request) -> Response:
    view = _patron(session, req)
    return _patron_status_response(session, req, view)


def _patron_status_response(session: Session, req: Request, view: PatronView) -> Response:
    resp = Response("24", _status_flags(view) + _language(req) + _now_text(session))
    _patron_fields(resp, session, req, view)
    _bl_cq(resp, view)
    if view.details and view.facts is not None:
        resp.add("BH", view.facts.currency).add("BV", _money(max(view.facts.balance, Decimal(0))))
    resp.add_all("AF", _screen_messages(view))
    return resp


def _slice(values: list[str], req: Request) -> list[str]:
    def number(fid: str, default: int) -> int:
        text = req.get(fid).strip()
        return int(text) if text.isdigit() and 0 < int(text) < 100000 else default

    start = number("BP", 1)
    end = number("BQ", start + LIST_MAX - 1)
    return values[start - 1 : min(end, start + LIST_MAX - 1)]


def patron_information(session: Session, req: Request) -> Response:
    view = _patron(session, req)
    patron, now = view.patron, clock.now()
    charged: list[str] = []
    overdue: list[str] = []
    holds: list[str] = []
    unavailable: list[str] = []
    fine_items: list[str] = []
    if patron is not None and view.details:
        for kind, text, flag in circulation_queries.patron_summary(patron.pk, now):
            if kind == "c":
                charged.append(text)
                if flag:
                    overdue.append(text)
            elif kind == "r":
                (holds if flag else unavailable).append(f"reservation {text}")
            else:
                fine_items.append(text)
    summary = req.fixed[21:31]
    wanted = summary.find("Y")
    resp = Response(
        "64",
        _status_flags(view)
        + _language(req)
        + _now_text(session)
        + "".join(count(len(x)) for x in (holds, overdue, charged, fine_items, [], unavailable)),
    )
    _patron_fields(resp, session, req, view)
    _bl_cq(resp, view)
    if view.details and view.facts is not None:
        resp.add("BH", view.facts.currency).add("BV", _money(max(view.facts.balance, Decimal(0))))
        resp.add("CC", _money(view.facts.fine_limit))
    lists = {0: ("AS", holds), 1: ("AT", overdue), 2: ("AU", charged), 3: ("AV", fine_items), 5: ("CD", unavailable)}
    if wanted in lists:
        fid, values = lists[wanted]
        resp.add_all(fid, _slice(values, req))
    resp.add_all("AF", _screen_messages(view))
    if patron is not None and view.details:
        _extension_fields(resp, session, patron)
    return resp


def _extension_fields(resp: Response, session: Session, patron: Patron) -> None:
    """PA (card expiry), PC (patron type code) and XI (record number), those the client chose, in that order."""
    assert session.client is not None  # noqa: S101
    chosen = set(session.client.sip2_extension_fields)
    if "PA" in chosen:
        resp.add("PA", f"{patron.expires_on:%Y%m%d}")
    if "PC" in chosen:
        resp.add("PC", _type_code(session, patron))
    if "XI" in chosen:
        resp.add("XI", patron.pk)


def _type_code(session: Session, patron: Patron) -> str:
    """The patron type's code, remembered per connection (types change rarely; a reconnect refreshes)."""
    key = f"type:{patron.patron_type_id}"
    if key not in session.extra:
        session.extra[key] = patron.patron_type.code
    return session.extra[key]


def _resource(session: Session, identifier: str) -> Resource | None:
    assert session.client is not None  # noqa: S101
    text = identifier.strip()
    if not text:
        return None
    return (
        Resource.objects.select_related("center")
        .filter(library_id=session.client.library_id, identifier=text[:64])
        .first()
    )


def _center(session: Session, resource: Resource) -> Branch:
    """The client's center: the login's location code (CP) when it names a checkout center, else the resource's."""
    assert session.client is not None  # noqa: S101
    if session.location:
        found = Branch.objects.filter(
            library_id=session.client.library_id, code=session.location, is_checkout_center=True
        ).first()
        if found is not None:
            return found
    return resource.center


def _due_text(session: Session, due: dt.datetime) -> str:
    return sip_date(due, _zone(session))


def _problem_messages(exc: DomainError) -> list[str]:
    if isinstance(exc, Refused) and exc.reasons:
        return [f"{r.get('message', '')} {r.get('remedy', '')}".strip() for r in exc.reasons]
    errors = getattr(exc, "errors", None)
    if errors:
        return [m for messages in errors.values() for m in messages]
    return [exc.message]


def checkout(session: Session, req: Request) -> Response:
    view = _patron(session, req)
    resource = _resource(session, req.get("AB"))
    messages: list[str] = []
    due = None
    ok = False
    if view.patron is None or not view.authenticated:
        messages = _screen_messages(view)
    elif resource is None:
        messages = ["This item is not known here. Ask at the desk."]
    else:
        center = _center(session, resource)
        minutes = reservation_queries.policy_for(center).max_duration_minutes or int(
            getattr(settings, "PATRONAGE_SIP2_DEFAULT_LOAN_MINUTES", 1440)
        )
        try:
            made = desk.walk_up(
                actor=session.actor, patron=view.patron, center=center,
                ends_at=clock.now() + dt.timedelta(minutes=minutes), scanned=[resource.identifier],
                title=f"Self-check ({session.client.name if session.client else ''})"[:200],
            )  # fmt: skip
        except DomainError as exc:
            messages = _problem_messages(exc)
        else:
            ok, due = True, made.due_at
    resp = Response("12", ("1" if ok else "0") + "N" + ("N" if ok else "U") + yes(ok) + _now_text(session))
    resp.add("AO", _institution(session)).add("AA", req.get("AA")).add("AB", req.get("AB"))
    resp.add("AJ", resource.name if resource else "").add("AH", _due_text(session, due) if due else "")
    resp.add_all("AF", messages)
    return resp


def checkin(session: Session, req: Request) -> Response:
    resource = _resource(session, req.get("AB"))
    ok, messages = False, []
    item = circulation_queries.item_out(resource) if resource else None
    if resource is None:
        messages = ["This item is not known here. Ask at the desk."]
    elif item is None:
        messages = ["This item is not checked out."]
    else:
        try:
            desk.check_in(actor=session.actor, checkout=item.checkout, scanned=[resource.identifier])
        except DomainError as exc:
            messages = _problem_messages(exc)
        else:
            ok = True
    resp = Response("10", ("1" if ok else "0") + yes(ok) + "U" + yes(not ok) + _now_text(session))
    resp.add("AO", _institution(session)).add("AB", req.get("AB"))
    resp.add("AQ", resource.center.name if resource else "")
    if resource is not None:
        resp.add("AJ", resource.name)
    resp.add_all("AF", messages)
    return resp


def item_information(session: Session, req: Request) -> Response:
    resource = _resource(session, req.get("AB"))
    if resource is None:
        return (
            Response("18", "010101" + _now_text(session))
            .add("AB", req.get("AB"))
            .add("AJ", "")
            .add("AF", "This item is not known here.")
        )
    item = circulation_queries.item_out(resource)
    out_of_service = resource.out_of_service_from is not None and resource.out_of_service_from <= clock.now()
    status = "04" if item else ("01" if out_of_service else "03")
    resp = Response("18", status + "00" + "01" + _now_text(session))
    if item is not None:
        resp.add("AH", _due_text(session, item.checkout.due_at))
    resp.add("AB", resource.identifier).add("AJ", resource.name)
    resp.add("AQ", resource.center.name).add("AP", resource.center.name)
    return resp


def renew(session: Session, req: Request) -> Response:
    view = _patron(session, req)
    resource = _resource(session, req.get("AB"))
    ok, messages, due = False, [], None
    item = circulation_queries.item_out(resource) if resource else None
    if view.patron is None or not view.authenticated:
        messages = _screen_messages(view)
    elif resource is None:
        messages = ["This item is not known here. Ask at the desk."]
    elif item is None or item.checkout.patron_id != view.patron.pk:
        messages = ["This item is not checked out to you."]
    else:
        try:
            renewed = desk.renew(actor=session.actor, checkout=item.checkout)
        except DomainError as exc:
            messages = _problem_messages(exc)
        else:
            ok, due = True, renewed.due_at
    resp = Response("30", ("1" if ok else "0") + yes(ok) + "U" + "N" + _now_text(session))
    resp.add("AO", _institution(session)).add("AA", req.get("AA")).add("AB", req.get("AB"))
    resp.add("AJ", resource.name if resource else "").add("AH", _due_text(session, due) if due else "")
    resp.add_all("AF", messages)
    return resp


def fee_paid(session: Session, req: Request) -> Response:
    assert session.client is not None  # noqa: S101
    view = _patron(session, req)
    payment_type, currency = req.fixed[20:22], req.fixed[22:25].strip()
    ok, messages = False, []
    transaction_id = req.get("BK").strip()
    if view.patron is None or not view.authenticated:
        messages = _screen_messages(view)
    elif currency and currency != session.client.library.currency:
        messages = [f"This library takes payments in {session.client.library.currency} only."]
    else:
        if transaction_id:
            key = f"sip2:{session.client.pk}:{transaction_id}"
        else:  # no BK: the request itself is the key, so a client retrying it verbatim pays once
            digest = hashlib.sha256("|".join([req.fixed, req.get("AA"), req.get("BV")]).encode()).hexdigest()[:40]
            key = f"sip2:{session.client.pk}:req:{digest}"
        try:
            fines.take_payment(
                actor=session.actor, patron=view.patron, amount=req.get("BV").strip(),
                method=_PAYMENT_METHODS.get(payment_type, "other"), idempotency_key=key[:100],
                note=f"SIP2 {session.client.name}"[:500],
            )  # fmt: skip
        except DomainError as exc:
            messages = _problem_messages(exc)
        else:
            ok = True
    resp = Response("38", yes(ok) + _now_text(session))
    resp.add("AO", _institution(session)).add("AA", req.get("AA"))
    if transaction_id:
        resp.add("BK", transaction_id)
    resp.add_all("AF", messages)
    return resp


def end_session(session: Session, req: Request) -> Response:
    return Response("36", "Y" + _now_text(session)).add("AO", _institution(session)).add("AA", req.get("AA"))


def block_patron(session: Session, req: Request) -> Response:
    view = _patron(session, req)
    if view.patron is not None:
        client_name = session.client.name if session.client else ""
        comment = req.get("AL").strip() or "Card retained by a self-check machine."
        try:
            blocks.block_patron(actor=session.actor, patron=view.patron, comment=f"{comment} ({client_name})")
        except DomainError as exc:
            log.info("SIP2 block patron: %s", exc.message)
        view = _patron(session, Request("23", req.fixed, {"AA": [req.get("AA")]}, None, False))
    return _patron_status_response(session, req, view)


HANDLERS = {
    "93": login,
    "99": sc_status,
    "23": patron_status,
    "63": patron_information,
    "11": checkout,
    "09": checkin,
    "17": item_information,
    "29": renew,
    "37": fee_paid,
    "35": end_session,
    "01": block_patron,
}
BEFORE_LOGIN = {"93", "99"}


class NotLoggedIn(Exception):
    """A request other than 93 or 99 before a successful login: the connection is closed."""


def answer(session: Session, req: Request) -> Response:
    """The response to one parsed request; 97 repeats the last one and runs nothing."""
    if req.code == "97":
        return session.last if session.last is not None else wire.RESEND
    if session.client is None and req.code not in BEFORE_LOGIN:
        raise NotLoggedIn(req.code)
    resp = HANDLERS[req.code](session, req)
    session.last = resp
    return resp
