"""Reads of the updates app: the queue, a patron's requests, and the standing fact."""

from __future__ import annotations

from django.db.models import QuerySet

from patronage.patrons.models import Patron

from .models import UpdateRequest


def verification_pending_sql() -> str:
    """Standing's fact: 1 when the patron (row ``p``) has an update request waiting, else 0."""
    table = UpdateRequest._meta.db_table
    return f"SELECT COUNT(*) FROM {table} u WHERE u.patron_id = p.id AND u.state = 'pending'"


def pending_queue(library_ids: list[int], *, branch: int | None = None) -> QuerySet[UpdateRequest]:
    """Waiting requests of these libraries (optionally one branch's queue), oldest first."""
    rows = UpdateRequest.objects.filter(library_id__in=library_ids, state=UpdateRequest.State.PENDING)
    if branch is not None:
        rows = rows.filter(branch_id=branch)
    return rows.select_related("patron", "branch").order_by("created_at", "id")


def pending_for(patron: Patron | int) -> UpdateRequest | None:
    patron_id = patron if isinstance(patron, int) else patron.pk
    return UpdateRequest.objects.filter(patron_id=patron_id, state=UpdateRequest.State.PENDING).first()


def latest_for(patron: Patron) -> UpdateRequest | None:
    """The patron's most recent request (to show a rejection and its reason in the portal)."""
    return UpdateRequest.objects.filter(patron=patron).order_by("-created_at", "-id").first()


def requests_of(patron: Patron) -> QuerySet[UpdateRequest]:
    return UpdateRequest.objects.filter(patron=patron).order_by("-created_at", "-id")
