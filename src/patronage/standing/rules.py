"""Standing: everything that limits a patron right now, and what it forbids.

Pure Python: facts in, conditions and decisions out. No Django, no clock, no database. The codes
of ``Condition`` and ``Action`` are part of the public contract (portal, staff pages, REST, SIP2,
NCIP render them) and never change once released.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

INACTIVE = "inactive"


class Condition(StrEnum):
    BLOCKED_BY_STAFF = "blocked_by_staff"
    FINES_OVER_LIMIT = "fines_over_limit"
    RECORD_EXPIRED = "record_expired"
    RECORD_INACTIVE = "record_inactive"
    NO_ACTIVE_BARCODE = "no_active_barcode"
    OVERDUE_INVOICE = "overdue_invoice"
    LATE_RESOURCES = "late_resources"
    # Judged per request by reservations and circulation (they depend on the center and the resource
    # type asked for), never by ``conditions``; listed so every face renders one set of codes.
    SIGNATURE_MISSING = "signature_missing"
    NOT_AUTHORIZED_FOR_RESOURCE_TYPE = "not_authorized_for_resource_type"
    # Judged per interlibrary-loan request by resourcesharing (they depend on the identifier the
    # requester gave and on the library's interlibrary-loan configuration), through ``ill_conditions``.
    ILL_NOT_CONFIGURED = "ill_not_configured"
    PATRON_TYPE_NOT_AUTHORIZED_FOR_ILL = "patron_type_not_authorized_for_ill"
    IDENTIFIER_REPLACED = "identifier_replaced"
    # A warning for staff, never a refusal: it forbids nothing.
    POSSIBLE_DUPLICATE_ACCOUNT = "possible_duplicate_account"
    # An online change of contact details waits for staff to verify it (patronage.updates).
    VERIFICATION_PENDING = "verification_pending"


class Action(StrEnum):
    PORTAL_LOGIN = "portal_login"
    RESERVE = "reserve"
    CHECK_OUT = "check_out"
    RENEW = "renew"
    ILL_REQUEST = "ill_request"
    SELF_UPDATE = "self_update"
    PAY = "pay"


_BORROWING = frozenset({Action.RESERVE, Action.CHECK_OUT, Action.RENEW, Action.ILL_REQUEST})

# Which condition forbids which action: the one table every face reads.
# A blocked, expired or indebted patron may still sign in (to see why and what to do), update
# contact details and pay; an inactive record may do nothing but settle its debts.
FORBIDS: Mapping[Condition, frozenset[Action]] = {
    Condition.BLOCKED_BY_STAFF: _BORROWING,
    Condition.FINES_OVER_LIMIT: _BORROWING,
    Condition.RECORD_EXPIRED: _BORROWING,
    Condition.RECORD_INACTIVE: frozenset(Action) - {Action.PAY},
    Condition.NO_ACTIVE_BARCODE: frozenset({Action.CHECK_OUT, Action.RENEW, Action.ILL_REQUEST}),
    Condition.OVERDUE_INVOICE: _BORROWING,
    Condition.LATE_RESOURCES: _BORROWING,
    Condition.VERIFICATION_PENDING: frozenset({Action.CHECK_OUT}),
    Condition.SIGNATURE_MISSING: _BORROWING,
    Condition.NOT_AUTHORIZED_FOR_RESOURCE_TYPE: _BORROWING,
    Condition.ILL_NOT_CONFIGURED: frozenset({Action.ILL_REQUEST}),
    Condition.PATRON_TYPE_NOT_AUTHORIZED_FOR_ILL: frozenset({Action.ILL_REQUEST}),
    Condition.IDENTIFIER_REPLACED: frozenset({Action.ILL_REQUEST}),
    Condition.POSSIBLE_DUPLICATE_ACCOUNT: frozenset(),
}


@dataclass(frozen=True)
class BlockFact:
    block_id: int
    created_at: dt.datetime
    ends_at: dt.datetime | None
    comment: str


@dataclass(frozen=True)
class PatronFacts:
    """What standing needs to know about one patron, gathered by one query."""

    status: str
    expires_on: dt.date
    today: dt.date
    has_active_barcode: bool
    balance: Decimal
    fine_limit: Decimal
    currency: str
    blocks: tuple[BlockFact, ...] = ()
    overdue_owed: Decimal = Decimal("0.00")  # still owed on circulation's overdue invoices
    late_checkouts: int = 0  # checkouts past their end and not fully returned, at any center
    verification_pending: bool = False  # an update request of the patron waits for staff


@dataclass(frozen=True)
class Reason:
    """One condition as every face shows it."""

    code: Condition
    staff_message: str
    patron_message: str
    remedy: str
    details: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "staff_message": self.staff_message,
            "patron_message": self.patron_message,
            "remedy": self.remedy,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[Reason, ...]

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> list[str]:
        return [r.code.value for r in self.reasons]


@dataclass(frozen=True)
class Standing:
    conditions: tuple[Reason, ...]

    def decision(self, action: Action) -> Decision:
        return Decision(action, tuple(r for r in self.conditions if action in FORBIDS[r.code]))

    @property
    def codes(self) -> list[str]:
        return [r.code.value for r in self.conditions]

    @property
    def is_clear(self) -> bool:
        return not self.conditions


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def conditions(facts: PatronFacts) -> tuple[Reason, ...]:
    """Every condition that holds for the patron, in a stable order."""
    found: list[Reason] = []
    if facts.status == INACTIVE:
        found.append(
            Reason(
                Condition.RECORD_INACTIVE,
                "The patron record is inactive.",
                "Your library account is not active.",
                "Staff can reactivate the record in the Membership section.",
            )
        )
    for block in facts.blocks:
        until = f" until {block.ends_at:%Y-%m-%d %H:%M} UTC" if block.ends_at else ""
        found.append(
            Reason(
                Condition.BLOCKED_BY_STAFF,
                f"Blocked by staff on {block.created_at:%Y-%m-%d}{until}: {block.comment}",
                "Your account has been blocked by the library. Please contact the library.",
                "A staff member with the block/unblock permission can lift the block with a comment.",
                {"block_id": str(block.block_id), "ends_at": block.ends_at.isoformat() if block.ends_at else ""},
            )
        )
    if facts.balance > facts.fine_limit:
        over = facts.balance - facts.fine_limit
        found.append(
            Reason(
                Condition.FINES_OVER_LIMIT,
                f"Owes {_money(facts.balance, facts.currency)}, over the limit of "
                f"{_money(facts.fine_limit, facts.currency)} for this patron type.",
                f"You owe {_money(facts.balance, facts.currency)}, which is over the limit of "
                f"{_money(facts.fine_limit, facts.currency)}.",
                f"Pay {_money(over, facts.currency)} to go under the limit.",
                {
                    "balance": str(facts.balance),
                    "limit": str(facts.fine_limit),
                    "to_pay": str(over),
                    "currency": facts.currency,
                },
            )
        )
    if facts.expires_on < facts.today:
        found.append(
            Reason(
                Condition.RECORD_EXPIRED,
                f"The record expired on {facts.expires_on:%Y-%m-%d}.",
                f"Your library card expired on {facts.expires_on:%Y-%m-%d}.",
                "Renew the record: staff set a new expiry date in the Membership section.",
                {"expired_on": facts.expires_on.isoformat()},
            )
        )
    if facts.overdue_owed > 0:
        owed = _money(facts.overdue_owed, facts.currency)
        found.append(
            Reason(
                Condition.OVERDUE_INVOICE,
                f"Has an unpaid overdue invoice ({owed} still owed).",
                f"You have an unpaid invoice for a late return ({owed}).",
                f"Pay or waive the overdue invoice ({owed}) in the Debts section.",
                {"owed": str(facts.overdue_owed), "currency": facts.currency},
            )
        )
    if facts.late_checkouts:
        found.append(
            Reason(
                Condition.LATE_RESOURCES,
                f"Holds {facts.late_checkouts} late checkout(s) at a checkout center of this library.",
                "You have borrowed resources that are past their return time.",
                "Return the late resources at the checkout center's desk.",
                {"late_checkouts": str(facts.late_checkouts)},
            )
        )
    if facts.verification_pending:
        found.append(
            Reason(
                Condition.VERIFICATION_PENDING,
                "The patron asked online to change contact details; the change waits for staff to verify it.",
                "Your change of contact details is waiting for the library to check it.",
                "Verify or reject the request under Update requests (Resolve a Verify Patron block).",
            )
        )
    if not facts.has_active_barcode:
        found.append(
            Reason(
                Condition.NO_ACTIVE_BARCODE,
                "The patron has no active barcode.",
                "Your account has no active library card.",
                "Issue a new barcode in the Barcodes section.",
            )
        )
    return tuple(found)


def standing(facts: PatronFacts) -> Standing:
    return Standing(conditions(facts))


@dataclass(frozen=True)
class IllFacts:
    """What an interlibrary-loan request adds to the patron's standing facts."""

    patron_type_name: str
    type_authorized: bool  # the patron's type is one the library authorises for interlibrary loan
    any_type_authorized: bool  # the library authorises at least one type (else ILL is not configured)
    identifier_replaced_at: dt.datetime | None = None  # the identifier given is a barcode replaced then
    identifier_is_old_barcode: bool = False
    possible_duplicates: int = 0  # other records with the same name and birth date, or the same e-mail


def ill_conditions(facts: IllFacts) -> tuple[Reason, ...]:
    """The conditions an interlibrary-loan request adds, in a stable order."""
    found: list[Reason] = []
    if facts.identifier_is_old_barcode:
        when = f" on {facts.identifier_replaced_at:%Y-%m-%d}" if facts.identifier_replaced_at else ""
        found.append(
            Reason(
                Condition.IDENTIFIER_REPLACED,
                f"The barcode given is an old card of this patron, replaced{when}.",
                f"This library card was replaced{when}. Use your current card number.",
                "Ask the patron for the current card, or update the user id the requesting system holds "
                "(for example the ReShare or SSO patron id) to the current barcode.",
                {
                    "replaced_on": facts.identifier_replaced_at.date().isoformat()
                    if facts.identifier_replaced_at
                    else ""
                },
            )
        )
    if not facts.any_type_authorized:
        found.append(
            Reason(
                Condition.ILL_NOT_CONFIGURED,
                "Interlibrary loan is not configured at this library: no patron type is authorised for it.",
                "Interlibrary loan is not available from this library at the moment.",
                "An administrator ticks 'May request through interlibrary loan' on each patron type that may "
                "use it (Administration, Patron types).",
            )
        )
    elif not facts.type_authorized:
        found.append(
            Reason(
                Condition.PATRON_TYPE_NOT_AUTHORIZED_FOR_ILL,
                f"Patrons of type {facts.patron_type_name} are not authorised for interlibrary loan.",
                "Your type of membership does not include interlibrary loan.",
                f"If the type {facts.patron_type_name} should use interlibrary loan, an administrator ticks "
                "'May request through interlibrary loan' on it; otherwise change the patron's type.",
                {"patron_type": facts.patron_type_name},
            )
        )
    if facts.possible_duplicates:
        found.append(
            Reason(
                Condition.POSSIBLE_DUPLICATE_ACCOUNT,
                f"{facts.possible_duplicates} other record(s) have the same name and birth date or the same "
                "e-mail address: the patron may have two accounts.",
                "",
                "Compare the records; merge or deactivate the duplicate and give the patron the current credentials.",
                {"count": str(facts.possible_duplicates)},
            )
        )
    return tuple(found)


def ill_standing(base: Standing, facts: IllFacts) -> Standing:
    """The patron's standing as an interlibrary-loan request sees it."""
    return Standing(base.conditions + ill_conditions(facts))


def warnings(standing: Standing) -> tuple[Reason, ...]:
    """Conditions shown to staff that forbid nothing."""
    return tuple(r for r in standing.conditions if not FORBIDS[r.code])
