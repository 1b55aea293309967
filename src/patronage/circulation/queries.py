"""Reads of checkouts: what is out, what is late, and the SQL standing splices into its one statement."""

from __future__ import annotations

import datetime as dt
import os
from collections import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import overload
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet, Sum

from patronage.core import rows
from patronage.fines.models import Fee, PaymentAllocation, Waiver
from patronage.libraries.models import Branch
from patronage.reservations.models import Reservation
from patronage.reservations.rules import State
from patronage.resources.models import Resource

from .models import Checkout, CheckoutItem, JobRun, OverdueInvoice


def open_checkout_count(patron_id: int) -> int:
    return Checkout.objects.filter(patron_id=patron_id, completed_at__isnull=True).count()


def item_out(resource: Resource) -> CheckoutItem | None:
    """The checkout item that has ``resource`` out now (with its checkout), or None when it is not out: what
    a self-check machine's check-in and renewal scan (SIP2 09 and 29) act on."""
    return (
        CheckoutItem.objects.select_related("checkout")
        .filter(resource_id=resource.pk, returned_at__isnull=True, checkout__library_id=resource.library_id)
        .first()
    )


def late_checkouts_sql() -> str:
    """Standing's ``late_checkouts`` fact: checkouts past their end and not fully returned. Computed from
    ``due_at`` (not from ``state``), so a checkout is late from the minute its end passes, whether or not
    the late-marking job has run yet."""
    table = Checkout._meta.db_table
    return f"SELECT COUNT(*) FROM {table} c WHERE c.patron_id = p.id AND c.completed_at IS NULL AND c.due_at < %s"


def overdue_owed_sql() -> str:
    """Standing's ``overdue_owed`` fact: what is still owed on the patron's overdue invoices (fees raised
    by ``invoice_overdue``; an overdue-kind fee a staff member adds by hand is a debt, not an invoice)."""
    t = {
        "invoice": OverdueInvoice._meta.db_table,
        "checkout": Checkout._meta.db_table,
        "fee": Fee._meta.db_table,
        "allocation": PaymentAllocation._meta.db_table,
        "waiver": Waiver._meta.db_table,
    }
    owed = f"""f.amount
        - COALESCE((SELECT SUM(a.amount) FROM {t["allocation"]} a WHERE a.fee_id = f.id), 0)
        - COALESCE((SELECT SUM(v.amount) FROM {t["waiver"]} v WHERE v.fee_id = f.id), 0)"""
    return f"""SELECT COALESCE(SUM({owed}), 0) FROM {t["invoice"]} i
        JOIN {t["checkout"]} c ON c.id = i.checkout_id JOIN {t["fee"]} f ON f.id = i.fee_id
        WHERE c.patron_id = p.id AND ({owed}) > 0"""


def late(center_id: int | None = None, *, now: dt.datetime) -> QuerySet[Checkout]:
    rows = Checkout.objects.filter(completed_at__isnull=True, due_at__lt=now)
    return rows.filter(center_id=center_id) if center_id is not None else rows


def job_runs() -> dict[str, JobRun]:
    """Each scheduled job's last run, for the staff pages."""
    return {run.name: run for run in JobRun.objects.all()}


# --- the desk pages and the API ----------------------------------------------------------------------------

JOB_NAMES = ("mark_late", "invoice_overdue", "release_no_shows")
DEFAULT_JOBS_INTERVAL_SECONDS = 300  # ops/clock.py's default
STALE_AFTER_INTERVALS = 3


def jobs_interval_seconds() -> int:
    """How often the worker's clock queues the jobs (``PATRONAGE_JOBS_INTERVAL_SECONDS``), for judging
    whether they still run. The worker refuses a bad value at start; here a bad value, or 0 (the clock is
    off and a timer queues the jobs at an interval we cannot know), counts as the default."""
    text = os.environ.get("PATRONAGE_JOBS_INTERVAL_SECONDS", "").strip()
    value = int(text) if text.isdigit() else 0
    return value or DEFAULT_JOBS_INTERVAL_SECONDS


@dataclass(frozen=True)
class JobStatus:
    """One scheduled job as staff see it: when it last ran, what it did at their libraries, and whether
    it has gone quiet for longer than three intervals (a stopped worker)."""

    name: str
    run: JobRun | None
    touched_here: int
    stale: bool
    stale_after: dt.timedelta

    @property
    def last_finished_at(self) -> dt.datetime | None:
        return self.run.last_finished_at if self.run else None


def _touched(name: str, ids: Sequence[int], library_ids: Sequence[int]) -> int:
    """How many of the rows a run touched belong to these libraries: a run's outcome spans every library
    of the installation, and staff see only their own."""
    if not ids:
        return 0
    rows: QuerySet[Checkout] | QuerySet[Fee] | QuerySet[Reservation]
    if name == "invoice_overdue":
        rows = Fee.objects.all()
    elif name == "release_no_shows":
        rows = Reservation.objects.all()
    else:
        rows = Checkout.objects.all()
    return rows.filter(pk__in=list(ids), library_id__in=list(library_ids)).count()


def job_statuses(library_ids: Sequence[int], *, now: dt.datetime) -> list[JobStatus]:
    runs = job_runs()
    stale_after = dt.timedelta(seconds=STALE_AFTER_INTERVALS * jobs_interval_seconds())
    found = []
    for name in JOB_NAMES:
        run = runs.get(name)
        finished = run.last_finished_at if run else None
        ids = [int(i) for i in (run.last_outcome.get("ids", []) if run else []) if str(i).isdigit()]
        found.append(
            JobStatus(
                name=name, run=run, touched_here=_touched(name, ids, library_ids),
                stale=finished is None or now - finished > stale_after, stale_after=stale_after,
            )
        )  # fmt: skip
    return found


def _local_day(now: dt.datetime, time_zone: str) -> tuple[dt.datetime, dt.datetime]:
    """Today in a time zone, as the instants [midnight, next midnight)."""
    zone = ZoneInfo(time_zone)
    day = now.astimezone(zone).date()
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end


@dataclass(frozen=True)
class DeskDay:
    pickups: list[Reservation]
    returns: list[Checkout]
    late: list[Checkout]
    open: list[Checkout]


DESK_ROWS = 200  # per list; a desk with more than this open at once pages through the API instead


def desk_day(center: Branch, *, now: dt.datetime) -> DeskDay:
    """What a checkout center's desk has to do today, in the library's time zone:

    - pickups: reserved reservations starting before tomorrow and not yet ended (today's, and earlier ones
      still startable), by start;
    - returns: open checkouts due later today;
    - late: checkouts past their end and not fully back (computed from ``due_at``, as standing does);
    - open: every checkout not fully back, by due time.
    """
    _, tomorrow = _local_day(now, center.library.time_zone)
    pickups = (
        Reservation.objects.filter(center=center, state=State.RESERVED, starts_at__lt=tomorrow, ends_at__gt=now)
        .select_related("patron")
        .prefetch_related("lines__resource", "lines__resource_type")
        .order_by("starts_at", "id")
    )
    out = (
        Checkout.objects.filter(center=center, completed_at__isnull=True)
        .select_related("patron", "reservation")
        .prefetch_related("items__resource")
        .order_by("due_at", "id")
    )
    return DeskDay(
        pickups=list(pickups[:DESK_ROWS]),
        returns=list(out.filter(due_at__gte=now, due_at__lt=tomorrow)[:DESK_ROWS]),
        late=list(late(center.pk, now=now).select_related("patron").prefetch_related("items__resource")
                  .order_by("due_at", "id")[:DESK_ROWS]),
        open=list(out[:DESK_ROWS]),
    )  # fmt: skip


def overdue_fee(checkout: Checkout) -> tuple[Fee, Decimal] | None:
    """The overdue invoice's fee raised for a checkout and what is still owed on it, if one was raised."""
    invoice = OverdueInvoice.objects.filter(checkout=checkout).select_related("fee").first()
    fee = invoice.fee if invoice is not None else None
    if fee is None:  # never invoiced, or the fee went with anonymised history
        return None
    paid = PaymentAllocation.objects.filter(fee=fee).aggregate(total=Sum("amount"))["total"] or Decimal("0")
    waived = Waiver.objects.filter(fee=fee).aggregate(total=Sum("amount"))["total"] or Decimal("0")
    return fee, (fee.amount - paid - waived).quantize(Decimal("0.01"))


@cache
def _patron_summary_sql() -> str:
    t = {m: m._meta.db_table for m in (CheckoutItem, Checkout, Resource, Reservation, Fee, PaymentAllocation, Waiver)}
    return (
        f"SELECT 'c', r.identifier, CASE WHEN c.due_at < %s THEN 1 ELSE 0 END, c.due_at FROM {t[CheckoutItem]} i"
        f" JOIN {t[Checkout]} c ON c.id = i.checkout_id JOIN {t[Resource]} r ON r.id = i.resource_id"
        " WHERE c.patron_id = %s AND c.completed_at IS NULL AND i.returned_at IS NULL"
        f" UNION ALL SELECT 'r', CAST(v.id AS VARCHAR(20)), CASE WHEN v.state = 'reserved' THEN 1 ELSE 0 END,"
        f" v.starts_at FROM {t[Reservation]} v"
        " WHERE v.patron_id = %s AND v.state IN ('reserved', 'pending_approval') AND v.ends_at > %s"
        f" UNION ALL SELECT 'f', CAST(f.id AS VARCHAR(20)) || ' ' || f.kind, 0, f.created_at FROM {t[Fee]} f"
        f" WHERE f.patron_id = %s AND f.amount > COALESCE((SELECT SUM(a.amount) FROM {t[PaymentAllocation]} a"
        f" WHERE a.fee_id = f.id), 0) + COALESCE((SELECT SUM(w.amount) FROM {t[Waiver]} w WHERE w.fee_id = f.id), 0)"
        " ORDER BY 1, 4"
    )


def patron_summary(patron_id: int, now: dt.datetime) -> list[tuple[str, str, bool]]:
    """SIP2's patron summary (63): the patron's charged items (flag: overdue), open reservations (flag: ready,
    not awaiting approval) and fees with something owed, in one statement: this is the hottest path of every
    e-book vendor."""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_patron_summary_sql(), [at, patron_id, patron_id, at, patron_id])
        return [(str(k), str(text), bool(flag)) for k, text, flag, _ in cursor.fetchall()]


# --- the portal's checkout lists: each checkout with its center and items, in one hand-written statement -------

_WITH_ITEMS: tuple[rows.Join, ...] = ((Checkout, "c"), (Branch, "b"), (CheckoutItem, "i"), (Resource, "x"))
CheckoutWithItems = tuple[Checkout, list[CheckoutItem]]


def _with_items_statement(completed: bool, paged: bool) -> Callable[[BaseDatabaseWrapper], str]:
    order = "completed_at DESC, id DESC" if completed else "due_at, id"

    def build(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        page = " LIMIT %s OFFSET %s" if paged else ""
        return (
            f"SELECT {rows.select(db, _WITH_ITEMS).columns}"
            f" FROM (SELECT * FROM {quote(Checkout._meta.db_table)} WHERE patron_id = %s"
            f" AND completed_at IS {'NOT ' if completed else ''}NULL ORDER BY {order}{page}) c"
            f" JOIN {quote(Branch._meta.db_table)} b ON b.id = c.center_id"
            f" LEFT JOIN {quote(CheckoutItem._meta.db_table)} i ON i.checkout_id = c.id"
            f" LEFT JOIN {quote(Resource._meta.db_table)} x ON x.id = i.resource_id"
            f" ORDER BY {', '.join(f'c.{part}' for part in order.split(', '))}, i.id"
        )

    return build


def _checkouts_with_items(patron_id: int, completed: bool, page: tuple[int, int] | None) -> list[CheckoutWithItems]:
    key = ("portal-checkouts", completed, page is not None)
    build = _with_items_statement(completed, page is not None)
    db, found = rows.fetch(Checkout, key, build, [patron_id, *(page or ())])
    result: list[CheckoutWithItems] = []
    center_field = Checkout._meta.get_field("center")
    resource_field = CheckoutItem._meta.get_field("resource")
    for row in found:
        checkout, center, item, resource = rows.instances(db, db.alias, _WITH_ITEMS, row)
        assert isinstance(checkout, Checkout)  # noqa: S101 - the statement's FROM
        if not result or result[-1][0].pk != checkout.pk:
            center_field.set_cached_value(checkout, center)
            result.append((checkout, []))
        if isinstance(item, CheckoutItem):
            resource_field.set_cached_value(item, resource)
            result[-1][1].append(item)
    return result


def open_checkouts_with_items(patron_id: int) -> list[CheckoutWithItems]:
    """The patron's checkouts not yet completed, soonest due first, each with its center and every item (with
    its resource, returned or not) by id."""
    return _checkouts_with_items(patron_id, False, None)


class CheckoutHistory(abc.Sequence[CheckoutWithItems]):
    """The patron's completed checkouts, latest first, for ``Paginator``: its length and slices, each slice
    one statement giving the checkouts with their centers and items."""

    def __init__(self, patron_id: int) -> None:
        self.patron_id = patron_id

    def __len__(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM {connection.ops.quote_name(Checkout._meta.db_table)}"
                " WHERE patron_id = %s AND completed_at IS NOT NULL",
                [self.patron_id],
            )
            return int(cursor.fetchone()[0])

    @overload
    def __getitem__(self, index: int) -> CheckoutWithItems: ...

    @overload
    def __getitem__(self, index: slice) -> list[CheckoutWithItems]: ...

    def __getitem__(self, index: int | slice) -> CheckoutWithItems | list[CheckoutWithItems]:
        if isinstance(index, int):
            found = self[index : index + 1] if index >= 0 else []
            if not found:
                raise IndexError(index)
            return found[0]
        if index.step not in (None, 1) or (index.start or 0) < 0 or (index.stop or 0) < 0:
            raise ValueError("only forward slices of the history are read")
        start, stop = index.start or 0, index.stop
        if stop is None or stop <= start:
            return [] if stop is not None else _checkouts_with_items(self.patron_id, True, (len(self), start))
        return _checkouts_with_items(self.patron_id, True, (stop - start, start))

    def __iter__(self) -> Iterator[CheckoutWithItems]:
        return iter(self[0 : len(self)])
