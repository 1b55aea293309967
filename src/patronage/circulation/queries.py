"""Reads of checkouts: what is out, what is late, and the SQL standing splices into its one statement."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from patronage.fines.models import Fee, PaymentAllocation, Waiver

from .models import Checkout, JobRun, OverdueInvoice


def open_checkout_count(patron_id: int) -> int:
    return Checkout.objects.filter(patron_id=patron_id, completed_at__isnull=True).count()


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
