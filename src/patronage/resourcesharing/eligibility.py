"""May this patron request through interlibrary loan? The checklist staff used to walk by hand, answered.

The rule is standing's (``standing.rules``: the action ``ill_request`` and its conditions); this module
gathers the request's own facts (which identifier was given, the library's authorised patron types,
possible duplicate records), asks standing, and lays the answer out as the checklist of the staff guide:
each item with pass/fail, the data it looked at and the fix. The staff page, the REST endpoint, and
later NCIP and SIP2, all call ``check``/``check_patron`` and so give the same answer for the same patron.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from patronage.core import audit, clock, rows
from patronage.core.errors import DomainError, FieldError
from patronage.core.models import AuditEvent
from patronage.credentials import services as credentials
from patronage.libraries.models import Library
from patronage.patrons.models import Barcode, Patron, PatronType, Phone
from patronage.standing import services as standing_services
from patronage.standing.rules import Action, Condition, Decision, IllFacts, Reason, Standing, ill_standing, warnings

from .models import ProtocolClient

PATRON_NOT_FOUND = "patron_not_found"


class IdentifierType(StrEnum):
    """What the requester says the identifier is; ``ANY`` tries Person-ID, then barcode."""

    ANY = "any"
    USER_ID = "user_id"  # the Person-ID (the institution's id, what SSO and ReShare usually send)
    BARCODE = "barcode"
    PATRON_ID = "patron_id"  # Patronage's own record number


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a check result, not a password
    FAIL = "fail"
    WARN = "warn"
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class Item:
    """One question of the checklist and its answer."""

    key: str
    question: str
    status: Status
    data: dict[str, str] = field(default_factory=dict)
    fix: str = ""
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """The whole answer. ``patron`` is None when no record was found (``codes`` is then patron_not_found)."""

    identifier: str
    identifier_type: IdentifierType
    matched_by: str  # which kind of identifier found the record ("" when none did)
    patron: Patron | None
    decision: Decision | None
    warnings: tuple[Reason, ...]
    items: tuple[Item, ...]
    duplicate_ids: tuple[int, ...] = ()  # for staff only: never sent to a requesting system
    # The number to reach the patron at (mobile, else home, else work; "" when none), read with the record
    # when asked for (``with_phone``); None when not asked.
    phone: str | None = None

    @property
    def eligible(self) -> bool:
        return self.decision is not None and self.decision.allowed

    @property
    def codes(self) -> list[str]:
        return self.decision.codes if self.decision is not None else [PATRON_NOT_FOUND]


# The checklist, in the order of the staff guide, and the conditions each item answers for.
CHECKLIST: tuple[tuple[str, str, tuple[Condition, ...]], ...] = (
    ("record_found", "Does the patron have a record at this library?", ()),
    ("record_active", "Is the record active and not expired?", (Condition.RECORD_INACTIVE, Condition.RECORD_EXPIRED)),
    ("active_barcode", "Does the patron have an active barcode?", (Condition.NO_ACTIVE_BARCODE,)),
    (
        "identifier_current",
        "Is the identifier given the patron's current one (not an old card)?",
        (Condition.IDENTIFIER_REPLACED,),
    ),
    ("fines", "Do fines or unpaid invoices block borrowing?", (Condition.FINES_OVER_LIMIT, Condition.OVERDUE_INVOICE)),
    ("staff_block", "Has staff blocked the patron?", (Condition.BLOCKED_BY_STAFF,)),
    ("late_resources", "Does the patron hold late resources?", (Condition.LATE_RESOURCES,)),
    (
        "patron_type",
        "Is the patron's type one the library authorises for interlibrary loan?",
        (Condition.ILL_NOT_CONFIGURED, Condition.PATRON_TYPE_NOT_AUTHORIZED_FOR_ILL),
    ),
    ("duplicates", "Could the patron have a second account?", (Condition.POSSIBLE_DUPLICATE_ACCOUNT,)),
)
_FIX_NOT_FOUND = (
    "Check the identifier the requesting system sends (its user id field must hold the patron's Person-ID or "
    "current barcode); if the patron has no record, register them."
)


# The patron with its library and type, and the barcode that matched (if one did), read in one hand-written
# statement (``rows``): NCIP and the REST endpoint ask this on every request, and the same read through the
# ORM (two queries with select_related) cost several times the statements themselves (docs/performance.md).
_FIND_JOINS: tuple[rows.Join, ...] = ((Patron, "p"), (Library, "l"), (PatronType, "t"), (Barcode, "b"))
# Which identifiers each kind tries, in order: a Person-ID match ranks before a barcode match (current or
# old: an old card is found, and the checklist says it was replaced).
_TRIES: dict[IdentifierType, tuple[str, ...]] = {
    IdentifierType.ANY: ("user_id", "barcode"),
    IdentifierType.USER_ID: ("user_id",),
    IdentifierType.BARCODE: ("barcode",),
    IdentifierType.PATRON_ID: ("patron_id",),
}


def _find_statement(connection: BaseDatabaseWrapper, tries: tuple[str, ...], with_phone: bool = False) -> str:
    """The statement for one set of tries (each try takes the library and the identifier), built once per
    database; ``with_phone`` adds a last column, the patron's phone to reach them at: mobile, else home, else
    work."""
    return rows.statement(
        connection,
        ("eligibility.find", tries, with_phone),
        lambda c: _build_find_statement(c, tries, with_phone),
    )


def _build_find_statement(connection: BaseDatabaseWrapper, tries: tuple[str, ...], with_phone: bool) -> str:
    quote = connection.ops.quote_name
    table = {model: quote(model._meta.db_table) for model, _ in _FIND_JOINS}
    phone = (
        f", (SELECT ph.number FROM {quote(Phone._meta.db_table)} ph WHERE ph.patron_id = p.id"
        f" ORDER BY CASE WHEN ph.kind = '{Phone.Kind.MOBILE.value}' THEN 0 ELSE 1 END, ph.kind LIMIT 1)"
        if with_phone
        else ""
    )
    branch = {
        "user_id": "SELECT q.id AS patron_id, CAST(NULL AS BIGINT) AS barcode_id, {rank} AS pos"
        f" FROM {table[Patron]} q WHERE q.library_id = %s AND q.person_id = %s",
        "barcode": "SELECT c.patron_id AS patron_id, c.id AS barcode_id, {rank} AS pos"
        f" FROM {table[Barcode]} c WHERE c.library_id = %s AND c.number = %s",
        "patron_id": "SELECT q.id AS patron_id, CAST(NULL AS BIGINT) AS barcode_id, {rank} AS pos"
        f" FROM {table[Patron]} q WHERE q.library_id = %s AND q.id = %s",
    }
    union = " UNION ALL ".join(branch[name].format(rank=rank) for rank, name in enumerate(tries))
    return (
        f"SELECT {rows.select(connection, _FIND_JOINS).columns}{phone} FROM ({union}) m"
        f" JOIN {table[Patron]} p ON p.id = m.patron_id"
        f" JOIN {table[Library]} l ON l.id = p.library_id"
        f" JOIN {table[PatronType]} t ON t.id = p.patron_type_id"
        f" LEFT JOIN {table[Barcode]} b ON b.id = m.barcode_id"
        " WHERE p.library_id = %s ORDER BY m.pos, b.id LIMIT 1"
    )


def _find(
    library_id: int, text: str, kind: IdentifierType, with_phone: bool = False
) -> tuple[Patron | None, str, Barcode | None, str | None]:
    """(the patron, what matched, the barcode row when a barcode matched, the phone when ``with_phone``), at
    ``library_id`` only."""
    tries = _TRIES[kind]
    if tries == ("patron_id",) and not (text.isdigit() and len(text) < 19):
        return None, "", None, None
    alias = router.db_for_read(Patron)
    connection = connections[alias]
    params: list[Any] = []
    for name in tries:
        params += [library_id, int(text) if name == "patron_id" else text]
    with connection.cursor() as cursor:
        cursor.execute(_find_statement(connection, tries, with_phone), [*params, library_id])
        row = cursor.fetchone()
    if row is None:
        return None, "", None, None
    phone = (row[-1] or "") if with_phone else None
    if with_phone:
        row = row[:-1]
    patron, library, patron_type, barcode = rows.instances(connection, alias, _FIND_JOINS, row)
    if not isinstance(patron, Patron) or not isinstance(barcode, Barcode | None):  # pragma: no cover
        raise TypeError(patron)
    Patron._meta.get_field("library").set_cached_value(patron, library)
    Patron._meta.get_field("patron_type").set_cached_value(patron, patron_type)
    if barcode is not None:
        Barcode._meta.get_field("patron").set_cached_value(barcode, patron)
        return patron, IdentifierType.BARCODE, barcode, phone
    matched_by = IdentifierType.PATRON_ID if tries == ("patron_id",) else IdentifierType.USER_ID
    return patron, matched_by, None, phone


def _around_statement(connection: BaseDatabaseWrapper, by_name: bool, emails: int) -> str:
    """The library's authorised types (kind 't') and the patron's possible duplicates (kind 'd', at most 20),
    in one statement. A duplicate is another record of the library with the same name and birth date, or
    the same e-mail address."""
    quote = connection.ops.quote_name
    patron, ptype = quote(Patron._meta.db_table), quote(PatronType._meta.db_table)
    sql = f"SELECT 't', t.id, t.name FROM {ptype} t WHERE t.library_id = %s AND t.may_use_ill"
    same = []
    if by_name:
        same.append("(LOWER(q.last_name) = %s AND LOWER(q.first_name) = %s AND q.birth_date = %s)")
    if emails:
        marks = ", ".join(["%s"] * emails)
        same.append(f"LOWER(q.primary_email) IN ({marks}) OR LOWER(q.alternate_email) IN ({marks})")
    if same:
        sql += (
            f" UNION ALL SELECT 'd', d.id, '' FROM (SELECT q.id FROM {patron} q WHERE q.library_id = %s"
            f" AND q.id <> %s AND ({' OR '.join(same)}) ORDER BY q.id LIMIT 20) d"
        )
    return sql + " ORDER BY 1, 3, 2"


def _around(patron: Patron) -> tuple[list[tuple[int, str]], list[int]]:
    """(the authorised types as (id, name) by name, the ids of possible duplicate records)."""
    connection = connections[router.db_for_read(Patron)]
    by_name = patron.birth_date is not None
    emails = sorted({e.lower() for e in (patron.primary_email, patron.alternate_email) if e})
    params: list[Any] = [patron.library_id]
    if by_name or emails:
        params += [patron.library_id, patron.pk]
        if by_name:
            birth = connection.ops.adapt_datefield_value(patron.birth_date)
            params += [patron.last_name.lower(), patron.first_name.lower(), birth]
        params += emails * 2
    with connection.cursor() as cursor:
        cursor.execute(_around_statement(connection, by_name, len(emails)), params)
        rows = cursor.fetchall()
    types = [(int(pk), str(name)) for kind, pk, name in rows if kind == "t"]
    return types, [int(pk) for kind, pk, _ in rows if kind == "d"]


def authorised_types(library_id: int) -> list[PatronType]:
    """The library's list of patron types authorised for interlibrary loan (``PatronType.may_use_ill``)."""
    return list(PatronType.objects.filter(library_id=library_id, may_use_ill=True).order_by("name"))


def _data_for(key: str, patron: Patron, base: Standing, ill: IllFacts, matched_by: str, today: dt.date,
              barcode: Barcode | None, types: list[tuple[int, str]], duplicates: int) -> dict[str, str]:  # fmt: skip
    """The data each item looked at; nothing here names another record or the patron's new barcode."""
    if key == "record_found":
        return {"matched_by": matched_by, "patron_id": str(patron.pk)}
    if key == "record_active":
        return {"status": patron.status, "expires_on": patron.expires_on.isoformat(), "today": today.isoformat()}
    if key == "active_barcode":
        return {"has_active_barcode": "no" if Condition.NO_ACTIVE_BARCODE in base.codes else "yes"}
    if key == "identifier_current":
        if barcode is None:
            return {"identifier_is": matched_by}
        replaced = barcode.replaced_at.date().isoformat() if barcode.replaced_at else ""
        return {"identifier_is": "current barcode" if barcode.is_active else "old barcode", "replaced_on": replaced}
    if key == "duplicates":
        return {"possible_duplicates": str(duplicates)}
    if key == "patron_type":
        return {
            "patron_type": patron.patron_type.name,
            "authorised_types": ", ".join(name for _, name in types) or "(none: interlibrary loan is not configured)",
        }
    found: dict[str, str] = {}
    for reason in base.conditions:
        if key == "fines" and reason.code in (Condition.FINES_OVER_LIMIT, Condition.OVERDUE_INVOICE):
            found.update(reason.details)
        if key == "staff_block" and reason.code == Condition.BLOCKED_BY_STAFF:
            found["blocks"] = str(int(found.get("blocks", "0")) + 1)
        if key == "late_resources" and reason.code == Condition.LATE_RESOURCES:
            found.update(reason.details)
    if key == "fines" and not found:
        found = {"over_limit": "no", "limit": f"{patron.patron_type.fine_limit:.2f}"}
    if key == "staff_block" and not found:
        found = {"blocks": "0"}
    if key == "late_resources" and not found:
        found = {"late_checkouts": "0"}
    return found


def _not_found(text: str, kind: IdentifierType) -> Result:
    items = [Item("record_found", CHECKLIST[0][1], Status.FAIL, {"identifier_type": kind.value}, _FIX_NOT_FOUND,
                  (PATRON_NOT_FOUND,))]  # fmt: skip
    items += [Item(key, question, Status.NOT_CHECKED) for key, question, _ in CHECKLIST[1:]]
    return Result(text, kind, "", None, None, (), tuple(items))


def _evaluate(patron: Patron, text: str, kind: IdentifierType, matched_by: str, barcode: Barcode | None,
              now: dt.datetime, phone: str | None = None) -> Result:  # fmt: skip
    base = standing_services.standing(patron, now=now)
    types, duplicates = _around(patron)
    old = barcode is not None and not barcode.is_active
    ill = IllFacts(
        patron_type_name=patron.patron_type.name,
        type_authorized=any(pk == patron.patron_type_id for pk, _ in types),
        any_type_authorized=bool(types),
        identifier_is_old_barcode=old,
        identifier_replaced_at=barcode.replaced_at if old and barcode is not None else None,
        possible_duplicates=len(duplicates),
    )
    full = ill_standing(base, ill)
    decision = full.decision(Action.ILL_REQUEST)
    today = now.astimezone(ZoneInfo(patron.library.time_zone)).date()
    items: list[Item] = []
    for key, question, conditions in CHECKLIST:
        held = [r for r in full.conditions if r.code in conditions]
        data = _data_for(key, patron, base, ill, matched_by, today, barcode, types, len(duplicates))
        if key == "duplicates":
            status = Status.WARN if held else Status.PASS
        else:
            status = Status.FAIL if held else Status.PASS
        fix = " ".join(r.remedy for r in held)
        items.append(Item(key, question, status, data, fix, tuple(r.code.value for r in held)))
    return Result(text, kind, matched_by, patron, decision, warnings(full), tuple(items), tuple(duplicates), phone)


def check(
    library_id: int,
    identifier: str,
    kind: IdentifierType = IdentifierType.ANY,
    *,
    now: dt.datetime | None = None,
    with_phone: bool = False,
) -> Result:
    """The checklist for whoever ``identifier`` names at ``library_id`` (another library's patron: not found);
    ``with_phone``: with the patron's phone (``Result.phone``), read in the same statement as the record."""
    text = (identifier or "").strip()[:64]
    if not text:
        return _not_found(text, kind)
    patron, matched_by, barcode, phone = _find(library_id, text, kind, with_phone)
    if patron is None:
        return _not_found(text, kind)
    return _evaluate(patron, text, kind, matched_by, barcode, now or clock.now(), phone)


def check_patron(patron: Patron, *, now: dt.datetime | None = None) -> Result:
    """The checklist for a patron staff already hold (found by record number, so no old card is involved)."""
    return _evaluate(patron, str(patron.pk), IdentifierType.PATRON_ID, IdentifierType.PATRON_ID, None,
                     now or clock.now())  # fmt: skip


class PatronAuthenticationFailed(DomainError):
    """The PIN or password given with the identifier is not the patron's."""

    code = "patron_authentication_failed"
    status = 400

    def __init__(self) -> None:
        super().__init__("The patron's identifier or PIN/password is not right.")


def _check_pin(result: Result, pin: str, address: str | None, client: str) -> bool:
    """Check the patron's PIN/password through the portal's sign-in (same lock-out, same directory).

    Returns whether it was checked: an old card is not (the portal refuses old cards; the answer already
    says the card was replaced). Raises ``PatronAuthenticationFailed`` or the sign-in's lock.
    """
    patron = result.patron
    if patron is None or result.decision is None:
        raise PatronAuthenticationFailed()
    if Condition.IDENTIFIER_REPLACED.value in result.codes:
        return False
    if result.matched_by == IdentifierType.PATRON_ID:
        current = Barcode.objects.filter(patron_id=patron.pk, is_active=True).values_list("number", flat=True).first()
        login = patron.person_id or current or ""
    else:
        login = result.identifier
    try:
        signed_in = credentials.verify_password(patron.library_id, login, pin, address, client=client)
    except credentials.SignInFailed:
        raise PatronAuthenticationFailed() from None
    if signed_in.pk != patron.pk:
        raise PatronAuthenticationFailed()
    return True


def validate(
    *,
    client: ProtocolClient,
    identifier: str,
    kind: IdentifierType = IdentifierType.ANY,
    pin: str | None = None,
    address: str | None = None,
    now: dt.datetime | None = None,
    channel: str = AuditEvent.Channel.API,
    with_phone: bool = False,
) -> tuple[Result, bool]:
    """The checklist for a protocol client asking about a patron of its library; audited (the event names the
    client, the channel and the address, so it also stands for the client's sign-in where the caller asked
    ``clients.authenticate_client`` not to write one of its own).

    Returns the result and whether a PIN was checked. Without a PIN the client vouches for the patron.
    """
    if kind == IdentifierType.PATRON_ID and pin is None:
        # Record numbers are dense (1, 2, 3 ...): without the patron's PIN a client could walk every name.
        raise FieldError(
            "identifier_type", "A record number is accepted only with the patron's PIN; send the user id or barcode."
        )
    result = check(client.library_id, identifier, kind, now=now, with_phone=with_phone)
    pin_checked = False
    actor = audit.Actor(user=None, channel=channel, source_ip=address)
    patron = result.patron
    if pin is not None and patron is not None:
        try:
            pin_checked = _check_pin(result, pin, address, client.login)
        except (PatronAuthenticationFailed, credentials.SignInLocked) as exc:
            # A refused PIN is a security event: recorded (and waiting for the disk) though nothing was read.
            audit.record(
                actor, "patron.pin_refused", library_id=client.library_id, patron_id=patron.pk,
                patron_label=patron.display_name, client_id=client.pk, client_name=client.name,
                locked=isinstance(exc, credentials.SignInLocked),
            )  # fmt: skip
            raise
    audit.record_read(
        actor, "patron.ill_validated", library_id=client.library_id,
        patron_id=patron.pk if patron else None, patron_label=patron.display_name if patron else "",
        client_id=client.pk, client_name=client.name, matched_by=result.matched_by,
        eligible=result.eligible, codes=result.codes, pin_checked=pin_checked,
    )  # fmt: skip
    return result, pin_checked
