"""Lending history retention: old completed history loses every link to the person.

A library with a ``lending_history_retention_days`` period has its reservations in a final state
(completed, cancelled, rejected, no-show) anonymised once they ended longer ago than the period, with
their checkouts, unless the patron chose to keep their history (``Patron.keep_lending_history``).

Anonymising keeps what statistics need (library, center, resources, times, states, channel, the codes of
the rules overridden) and drops what points at the person: the patron, the series (it belongs to the
patron), free text that may name them (title, note to staff, delivery location, override comment, the
comments of the reservation's history), the labels of what the patron did through the portal, and the
link from an overdue invoice to the fee in the patron's ledger. Resource condition notes stay: they are
about the resource.

The job works in batches of ``BATCH`` reservations, one transaction each. A batch locks its rows with
``SKIP LOCKED`` (on PostgreSQL), rows and patrons both, so two workers never take the same rows and a
patron whose record is being edited or deleted at that moment is simply left for the next run. An
anonymised row no longer matches the query, so a second run finds nothing to do.

Deleting a patron (``privacy.services.delete_patron``) anonymises all of the patron's history the same
way, whatever its age, before the account goes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q, QuerySet

from patronage.core import audit, clock
from patronage.libraries.models import Library
from patronage.reservations.models import Reservation, ReservationEvent, ReservationSeries
from patronage.reservations.rules import State

from .models import Checkout, OverdueInvoice

BATCH = 1000
FINAL_STATES = (State.COMPLETED.value, State.CANCELLED.value, State.REJECTED.value, State.NO_SHOW.value)
# The face through which the patron acts themselves: labels recorded for it may name the patron.
PATRON_CHANNEL = Reservation.Channel.PORTAL.value


@dataclass
class Counts:
    reservations: int = 0
    checkouts: int = 0
    events: int = 0
    series_removed: int = 0
    ids: list[int] = field(default_factory=list)
    seen: int = 0  # rows a batch took, to know whether another batch may follow

    def add(self, other: Counts) -> None:
        self.reservations += other.reservations
        self.checkouts += other.checkouts
        self.events += other.events
        self.series_removed += other.series_removed
        self.ids += other.ids

    def as_detail(self) -> dict[str, int]:
        return {
            "reservations": self.reservations,
            "checkouts": self.checkouts,
            "events": self.events,
            "series_removed": self.series_removed,
        }


def due_for_anonymisation(library: Library, now: dt.datetime) -> QuerySet[Reservation]:
    """The library's reservations whose history is due to lose its patron (none without a period).

    The end of a reservation's history is the latest of its end, its last change of state and its
    checkout's completion: a late return or a late rejection keeps it for the full period after that.
    """
    if library.lending_history_retention_days is None:
        return Reservation.objects.none()
    cutoff = now - dt.timedelta(days=library.lending_history_retention_days)
    return Reservation.objects.filter(
        library_id=library.pk,
        state__in=FINAL_STATES,
        ends_at__lt=cutoff,
        updated_at__lt=cutoff,
        patron__isnull=False,
        patron__keep_lending_history=False,
    ).filter(Q(checkout__isnull=True) | Q(checkout__completed_at__lt=cutoff))


def _scrub(ids: Sequence[int]) -> Counts:
    """Drop every link to the person from these reservations (already locked) and their checkouts."""
    # Only rows still linked: a row another run anonymised meanwhile is neither changed nor counted twice.
    ids = list(Reservation.objects.filter(pk__in=ids, patron__isnull=False).order_by("pk").values_list("pk", flat=True))
    counts = Counts(ids=ids)
    series_ids = set(Reservation.objects.filter(pk__in=ids, series__isnull=False).values_list("series_id", flat=True))
    counts.reservations = Reservation.objects.filter(pk__in=ids).update(
        patron=None, series=None, title="", note_to_staff="", delivery_location="", override_comment=""
    )
    Reservation.objects.filter(pk__in=ids, channel=PATRON_CHANNEL).update(operator_label="")
    counts.events = ReservationEvent.objects.filter(reservation_id__in=ids).exclude(comment="").update(comment="")
    ReservationEvent.objects.filter(reservation_id__in=ids, channel=PATRON_CHANNEL).update(by_label="")
    counts.checkouts = Checkout.objects.filter(reservation_id__in=ids, patron__isnull=False).update(patron=None)
    OverdueInvoice.objects.filter(checkout__reservation_id__in=ids, fee__isnull=False).update(fee=None)
    if series_ids:
        # A series whose occurrences are all anonymised holds nothing but the patron and the rule.
        counts.series_removed, _ = ReservationSeries.objects.filter(
            pk__in=series_ids, occurrences__isnull=True
        ).delete()
    return counts


def _anonymise_batch(library: Library, now: dt.datetime) -> Counts:
    with transaction.atomic():
        rows = (
            due_for_anonymisation(library, now)
            .select_related("patron")
            .select_for_update(skip_locked=True, of=("self", "patron"))
            .order_by("pk")[:BATCH]
        )
        ids = [r.pk for r in rows]
        if not ids:
            return Counts()
        counts = _scrub(ids)
        counts.seen = len(ids)
        return counts


def anonymise_library(library: Library, *, now: dt.datetime | None = None) -> Counts:
    """Anonymise the library's history that is due, batch by batch; returns what changed."""
    now = now or clock.now()
    total = Counts()
    while True:
        counts = _anonymise_batch(library, now)
        total.add(counts)
        if counts.seen < BATCH:
            return total


def anonymise_history(*, actor: audit.Actor, now: dt.datetime | None = None) -> list[int]:
    """The scheduled job: every library with a retention period. Records one audit event per library where
    anything was anonymised (counts only, no person); returns the ids of the reservations anonymised."""
    now = now or clock.now()
    done: list[int] = []
    for library in Library.objects.filter(lending_history_retention_days__isnull=False).order_by("pk"):
        counts = anonymise_library(library, now=now)
        if counts.reservations:
            audit.record(
                actor, "lending_history.anonymised", library_id=library.pk,
                retention_days=library.lending_history_retention_days, counts=counts.as_detail(),
            )  # fmt: skip
        done += counts.ids
    return done


def anonymise_patron_history(patron_id: int) -> Counts:
    """All of one patron's history in a final state, whatever its age (the patron is being deleted).

    The caller holds the patron's row lock, so nothing of the patron can open meanwhile. Open
    reservations and checkouts are not touched: they refuse the deletion before this runs.
    """
    total = Counts()
    while True:
        ids = list(
            Reservation.objects.filter(patron_id=patron_id, state__in=FINAL_STATES)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return total
        total.add(_scrub(ids))
