"""Reads of groups: the member details list, a group's combined balance, and the portal's My Groups.

The member details cost a fixed number of statements whatever the group's size: one for every member's
facts (the same facts standing gathers for one patron, read for all members at once), one for the blocks
in force when any member is blocked. The rules that turn facts into conditions stay in
``standing.rules``; only the reading is done here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from patronage.blocks.models import Block
from patronage.circulation.models import Checkout
from patronage.core import clock, rows
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.models import Library
from patronage.patrons.models import Barcode, Patron, PatronType
from patronage.standing import facts as standing_facts
from patronage.standing import queries as standing_queries
from patronage.standing import rules as standing_rules

from . import rules
from .models import GroupMember, PatronGroup

_CENT = Decimal("0.01")
_ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=12, decimal_places=2))


@dataclass(frozen=True)
class MemberRow:
    """One line of Group Member Details."""

    patron_id: int
    first_name: str
    last_name: str
    role: str
    barcode: str | None
    patron_type: str
    balance: Decimal
    currency: str
    items_out: int
    overdue: int
    conditions: tuple[standing_rules.Reason, ...] = field(default=())

    @property
    def display_name(self) -> str:
        return f"{self.last_name}, {self.first_name}"

    @property
    def is_guardian(self) -> bool:
        return self.role == rules.GUARDIAN

    @property
    def standing_summary(self) -> str:
        """The codes of what limits the member, or "clear"."""
        return ", ".join(r.code.value for r in self.conditions) or "clear"


def _members_statement(registered: tuple[tuple[str, str, int], ...]) -> str:
    t = {
        "member": GroupMember._meta.db_table,
        "patron": Patron._meta.db_table,
        "ptype": PatronType._meta.db_table,
        "library": Library._meta.db_table,
        "barcode": Barcode._meta.db_table,
        "fee": Fee._meta.db_table,
        "payment": Payment._meta.db_table,
        "waiver": Waiver._meta.db_table,
        "block": Block._meta.db_table,
        "checkout": Checkout._meta.db_table,
    }
    extra = "".join(f",\n               {sql}" for _, sql, _ in registered)
    return f"""
        SELECT p.id, p.first_name, p.last_name, m.role, p.status, p.expires_on, t.name, t.fine_limit,
               l.currency, l.time_zone,
               (SELECT MIN(b.number) FROM {t["barcode"]} b WHERE b.patron_id = p.id AND b.is_active),
               COALESCE((SELECT SUM(f.amount) FROM {t["fee"]} f WHERE f.patron_id = p.id), 0),
               COALESCE((SELECT SUM(y.amount) FROM {t["payment"]} y WHERE y.patron_id = p.id), 0),
               COALESCE((SELECT SUM(w.amount) FROM {t["waiver"]} w WHERE w.patron_id = p.id), 0),
               (SELECT COUNT(*) FROM {t["checkout"]} c WHERE c.patron_id = p.id AND c.completed_at IS NULL),
               EXISTS (SELECT 1 FROM {t["block"]} k WHERE k.patron_id = p.id AND k.lifted_at IS NULL
                       AND (k.ends_at IS NULL OR k.ends_at > %s)){extra}
        FROM {t["member"]} m
        JOIN {t["patron"]} p ON p.id = m.patron_id
        JOIN {t["ptype"]} t ON t.id = p.patron_type_id
        JOIN {t["library"]} l ON l.id = p.library_id
        WHERE m.group_id = %s
        ORDER BY p.last_name, p.first_name, p.id
    """


def member_rows(group_id: int, now: dt.datetime | None = None) -> list[MemberRow]:
    """Every member with name, barcode, type, own balance, items out, overdue and standing conditions."""
    now = now or clock.now()
    registered = standing_facts.expressions()
    sql = _members_statement(registered)
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [at, *([at] * sum(n for _, _, n in registered)), group_id])
        rows = cursor.fetchall()
    blocked_ids = [row[0] for row in rows if row[15]]
    blocks: dict[int, list[standing_rules.BlockFact]] = {}
    if blocked_ids:
        in_force = (
            Block.objects.filter(patron_id__in=blocked_ids, lifted_at__isnull=True)
            .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
            .order_by("created_at", "pk")
            .values_list("patron_id", "pk", "created_at", "ends_at", "comment")
        )
        for patron_id, block_id, created_at, ends_at, comment in in_force:
            blocks.setdefault(patron_id, []).append(standing_rules.BlockFact(block_id, created_at, ends_at, comment))
    result = []
    for row in rows:
        (pk, first, last, role, status, expires_on, type_name, fine_limit, currency, time_zone, barcode,
         fees, paid, waived, items_out, _blocked) = row[:16]  # fmt: skip
        found = {name: value or 0 for (name, _, _), value in zip(registered, row[16:], strict=True)}
        balance = (
            standing_queries.as_amount(fees) - standing_queries.as_amount(paid) - standing_queries.as_amount(waived)
        )
        facts = standing_rules.PatronFacts(
            status=status,
            expires_on=standing_queries.as_date(expires_on),
            today=now.astimezone(ZoneInfo(time_zone)).date(),
            has_active_barcode=barcode is not None,
            balance=balance,
            fine_limit=standing_queries.as_amount(fine_limit),
            currency=currency,
            blocks=tuple(blocks.get(pk, ())),
            **standing_queries.registered_fields(found),
        )
        result.append(
            MemberRow(
                patron_id=pk,
                first_name=first,
                last_name=last,
                role=role or "",
                barcode=barcode,
                patron_type=type_name,
                balance=balance,
                currency=currency,
                items_out=int(items_out),
                overdue=int(found.get("late_checkouts", 0)),
                conditions=standing_rules.conditions(facts),
            )
        )
    return result


_MEMBERSHIP: tuple[rows.Join, ...] = ((GroupMember, "m"), (PatronGroup, "g"))


def _membership_statement(db: BaseDatabaseWrapper) -> str:
    quote = db.ops.quote_name
    return (
        f"SELECT {rows.select(db, _MEMBERSHIP).columns} FROM {quote(GroupMember._meta.db_table)} m"
        f" JOIN {quote(PatronGroup._meta.db_table)} g ON g.id = m.group_id"
        " WHERE m.patron_id = %s ORDER BY m.joined_at, m.id LIMIT 1"
    )


def membership_of(patron_id: int) -> GroupMember | None:
    """The patron's place in a group (with the group), or None: one hand-written statement (the dashboard
    reads it on every visit)."""
    db, found = rows.fetch(GroupMember, "group-membership", _membership_statement, [patron_id])
    if not found:
        return None
    member, group = rows.instances(db, db.alias, _MEMBERSHIP, found[0])
    assert isinstance(member, GroupMember)  # noqa: S101 - the statement's FROM
    GroupMember._meta.get_field("group").set_cached_value(member, group)
    return member


@dataclass(frozen=True)
class GroupSummary:
    """What the patron summary shows: the group and the members' combined balance (informational only)."""

    group: PatronGroup
    role: str
    member_count: int
    balance: Decimal


def _sum(queryset: object) -> Decimal:
    value = queryset.aggregate(total=Coalesce(Sum("amount"), _ZERO))["total"]  # type: ignore[attr-defined]
    return standing_queries.as_amount(value)


def group_balance(group_id: int) -> Decimal:
    """The members' combined balance: their fees less payments and waivers, summed."""
    members = GroupMember.objects.filter(group_id=group_id).values("patron_id")
    return (
        _sum(Fee.objects.filter(patron_id__in=members))
        - _sum(Payment.objects.filter(patron_id__in=members))
        - _sum(Waiver.objects.filter(patron_id__in=members))
    )


def summary_for(patron_id: int) -> GroupSummary | None:
    membership = membership_of(patron_id)
    if membership is None:
        return None
    return GroupSummary(
        group=membership.group,
        role=membership.role,
        member_count=GroupMember.objects.filter(group_id=membership.group_id).count(),
        balance=group_balance(membership.group_id),
    )


@dataclass(frozen=True)
class PortalMember:
    name: str
    is_me: bool
    is_guardian: bool
    balance: Decimal | None = None  # None: the viewer may not see it
    checkouts: tuple[Checkout, ...] | None = None


@dataclass(frozen=True)
class PortalGroup:
    name: str
    kind: str
    my_role: str
    sees_details: bool
    currency: str
    members: tuple[PortalMember, ...]


def portal_groups(patron: Patron, now: dt.datetime | None = None) -> list[PortalGroup]:
    """The portal's My Groups: names for every member; a guardian also sees the others' checkouts and balances."""
    membership = membership_of(patron.pk)
    if membership is None:
        return []
    group = membership.group
    details = rules.sees_member_details(membership.role)
    rows = member_rows(group.pk, now)
    checkouts: dict[int, list[Checkout]] = {}
    if details:
        open_ = (
            Checkout.objects.filter(patron_id__in=[r.patron_id for r in rows], completed_at__isnull=True)
            .select_related("center", "reservation")
            .order_by("due_at", "pk")
        )
        for checkout in open_:
            if checkout.patron_id is not None:
                checkouts.setdefault(checkout.patron_id, []).append(checkout)
    members = tuple(
        PortalMember(
            name=f"{r.first_name} {r.last_name}",
            is_me=r.patron_id == patron.pk,
            is_guardian=r.is_guardian,
            balance=r.balance if details else None,
            checkouts=tuple(checkouts.get(r.patron_id, ())) if details else None,
        )
        for r in rows
    )
    currency = rows[0].currency if rows else ""
    return [PortalGroup(group.name, group.get_kind_display(), membership.role, details, currency, members)]
