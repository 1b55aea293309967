"""The desk: check out (a reservation, or walk-up), check in (whole or partial), and the scheduled jobs
that mark late checkouts, invoice them and release no-shows.

Every function is keyword-only and runs in one transaction. The reservation moves through the one
transition table of ``reservations.rules`` (reserved -> checked_out -> completed). The jobs are
idempotent: each works row by row under a row lock and checks again under it, and a checkout has at
most one overdue invoice (a unique constraint), so running them twice, or in two workers at once,
changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F

from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError, PermissionDenied, Refused
from patronage.fines import services as fines
from patronage.fines.models import Fee
from patronage.libraries.access import has_permission
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.reservations import queries as reservation_queries
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy, Reservation, ReservationLine
from patronage.reservations.rules import Step
from patronage.resources.models import Resource, ResourceType
from patronage.standing import services as standing
from patronage.standing.rules import Action

from . import retention
from .models import Checkout, CheckoutItem, JobRun, OverdueInvoice

NOTE_MAX = 2000
CONDITION_NOTES_MAX = 5000  # Resource.condition_notes


def _identifiers(values: Iterable[object]) -> list[str]:
    found = [str(v).strip() for v in values if str(v or "").strip()]
    if not found:
        raise FieldError("scanned", "Scan at least one resource.")
    if len(set(found)) != len(found):
        raise FieldError("scanned", "A resource was scanned twice; scan each once.")
    return found


def _resources(library_id: int, identifiers: Sequence[str]) -> list[Resource]:
    by_id = {
        r.identifier: r
        for r in Resource.objects.select_related("resource_type").filter(
            library_id=library_id, identifier__in=identifiers
        )
    }
    unknown = [i for i in identifiers if i not in by_id]
    if unknown:
        raise FieldError("scanned", f"Unknown resource(s) at this library: {', '.join(unknown)[:200]}.")
    return [by_id[i] for i in identifiers]


def _match(lines: Sequence[ReservationLine], scanned: Sequence[Resource]) -> dict[int, list[Resource]]:
    """Which scanned resource goes to which line: the reserved resource itself first, then "one of this
    type" lines, then a substitute of the same type for a specific line. Every line must be filled."""
    chosen: dict[int, list[Resource]] = {line.pk: [] for line in lines}
    left = list(scanned)
    for line in lines:
        if line.resource is not None and line.resource in left:
            chosen[line.pk].append(line.resource)
            left.remove(line.resource)
    for wants_type in (True, False):
        for resource in list(left):
            for line in lines:
                kind = line.resource_type_id if wants_type else (line.resource and line.resource.resource_type_id)
                if kind == resource.resource_type_id and len(chosen[line.pk]) < line.quantity:
                    chosen[line.pk].append(resource)
                    left.remove(resource)
                    break
    if left:
        raise FieldError(
            "scanned",
            f"Not part of this reservation: {', '.join(r.identifier for r in left)}. Scan only what it names, "
            "or a resource of the same type instead of a reserved one.",
        )
    missing = [line for line in lines if len(chosen[line.pk]) < line.quantity]
    if missing:
        names = ", ".join(
            str(line.resource) if line.resource else f"{line.quantity} x {line.resource_type}" for line in missing
        )
        raise FieldError("scanned", f"Still to scan: {names}.")
    return chosen


def _override(actor: audit.Actor, library_id: int, comment: str | None) -> str:
    text = str(comment or "").strip()[:NOTE_MAX]
    if text and not has_permission(actor.user, library_id, Permission.OVERRIDE_RESERVATION_RULES):
        raise PermissionDenied(
            f"You need the permission {Permission.OVERRIDE_RESERVATION_RULES.label!r} to override lending rules."
        )
    return text


def check_out(
    *,
    actor: audit.Actor,
    reservation: Reservation,
    scanned: Iterable[object],
    override_comment: str | None = None,
) -> Checkout:
    """Hand out a reserved reservation's resources, scanned by identifier.

    "One of this type" lines get the scanned resources of their type; a specific line may take another
    resource of the same type if that one is free for the rest of the span. Refused before the start and
    after the end, and when the patron's standing forbids ``check_out`` (staff with the override
    permission may override that with a comment).
    """
    identifiers = _identifiers(scanned)
    with transaction.atomic():
        reservation = reservations.lock_reservation(reservation)
        reservations.require_step(reservation, Step.CHECK_OUT)
        comment = _override(actor, reservation.library_id, override_comment)
        now = clock.now()
        if now < reservation.starts_at:
            zone = ZoneInfo(reservation.library.time_zone)
            raise Conflict(
                f"This reservation starts at {reservation.starts_at.astimezone(zone):%Y-%m-%d %H:%M}; hand it out "
                "from then.",
                code="pickup_too_early",
            )
        if now >= reservation.ends_at:
            raise Conflict("This reservation has ended; make a new one.", code="reservation_ended")
        if reservation.patron_id is None:  # only finished history is anonymised; never an open reservation
            raise Conflict("This reservation no longer names a patron.", code="patron_gone")
        patron = Patron.objects.select_for_update().get(pk=reservation.patron_id)
        decision = standing.decide(patron, Action.CHECK_OUT, at=reservation.center, now=now)
        if decision.reasons and not comment:
            raise Refused(
                f"The resources cannot be handed out: {len(decision.reasons)} reason(s).",
                [
                    {"code": r.code.value, "message": r.staff_message, "remedy": r.remedy, "overridable": "true"}
                    for r in decision.reasons
                ],
            )
        lines = list(reservation.lines.select_related("resource__resource_type", "resource_type"))
        chosen = _match(lines, _resources(reservation.library_id, identifiers))
        reservations.assign_resources(reservation=reservation, chosen=chosen)
        overridden = [r.code.value for r in decision.reasons]
        reservations.take_step(
            actor=actor, reservation=reservation, step=Step.CHECK_OUT,
            comment=f"Standing overridden ({', '.join(overridden)}): {comment}" if overridden else "",
        )  # fmt: skip
        checkout = Checkout.objects.create(
            reservation=reservation, library_id=reservation.library_id, center_id=reservation.center_id,
            patron=patron, checked_out_at=now, checked_out_by=actor.account,
            checked_out_by_label=actor.label[:150], due_at=reservation.ends_at,
        )  # fmt: skip
        CheckoutItem.objects.bulk_create(
            CheckoutItem(checkout=checkout, line_id=line_id, resource=resource)
            for line_id, resources in chosen.items()
            for resource in resources
        )
        audit.record(
            actor, "checkout.created", library_id=reservation.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, checkout_id=checkout.pk, reservation_id=reservation.pk,
            resources=identifiers, overridden=overridden,
        )  # fmt: skip
    return checkout


def walk_up(
    *,
    actor: audit.Actor,
    patron: Patron,
    center: Branch | int | str,
    ends_at: dt.datetime | str,
    scanned: Iterable[object],
    title: str = "",
    note: str = "",
    override_comment: str | None = None,
) -> Checkout:
    """Check resources out to a patron at the desk without a reservation: the reservation (from now) is
    made with every rule checked, and checked out, in one transaction; either both happen or neither."""
    identifiers = _identifiers(scanned)
    resources = _resources(patron.library_id, identifiers)
    with transaction.atomic():
        reservation = reservations.create_reservation(
            actor=actor, patron=patron, center=center, starts_at=clock.now(), ends_at=ends_at,
            lines=[{"resource": r.pk} for r in resources], title=title, note=note,
            override_comment=override_comment, walk_up=True,
        )  # fmt: skip
        return check_out(actor=actor, reservation=reservation, scanned=identifiers, override_comment=override_comment)


def check_in(
    *,
    actor: audit.Actor,
    checkout: Checkout,
    scanned: Iterable[object] | None = None,
    condition_notes: Mapping[str, str] | None = None,
) -> Checkout:
    """Take resources back: those scanned (by identifier), or everything still out when ``scanned`` is None.

    A condition note given for a resource is kept on the checkout item and added, dated, to the resource's
    condition notes (newest last). Returned resources are free for others at once; when the last one is
    back the checkout and its reservation are completed.
    """
    notes = {str(k).strip(): str(v or "").strip() for k, v in (condition_notes or {}).items()}
    if any(len(v) > NOTE_MAX for v in notes.values()):
        raise FieldError("condition_notes", f"Use at most {NOTE_MAX} characters per note.")
    with transaction.atomic():
        checkout = Checkout.objects.select_for_update().select_related("reservation").get(pk=checkout.pk)
        if checkout.completed_at is not None:
            raise Conflict("Everything in this checkout is back already.", code="checkout_completed")
        out = {
            item.resource.identifier: item
            for item in checkout.items.select_related("resource")
            if item.returned_at is None
        }
        wanted = list(out) if scanned is None else _identifiers(scanned)
        strangers = [i for i in wanted if i not in out]
        if strangers:
            raise FieldError("scanned", f"Not out in this checkout: {', '.join(strangers)[:200]}.")
        unknown_notes = [i for i in notes if i not in wanted]
        if unknown_notes:
            raise FieldError("condition_notes", f"Notes only for resources being returned: {', '.join(unknown_notes)}.")
        now = clock.now()
        reservation = reservations.lock_reservation(checkout.reservation_id)
        day = f"{now.astimezone(ZoneInfo(reservation.library.time_zone)):%Y-%m-%d}"
        returned_ids: list[int] = []
        for identifier in wanted:
            item = out[identifier]
            item.returned_at, item.returned_by, item.condition_note = now, actor.account, notes.get(identifier, "")
            item.save(update_fields=["returned_at", "returned_by", "condition_note"])
            returned_ids += [item.resource_id, *_parts(item.resource_id)]
            if item.condition_note:
                _add_condition_note(item.resource_id, f"{day} ({actor.label[:60]}): {item.condition_note}")
        if len(wanted) == len(out):
            checkout.completed_at = now
            checkout.state = Checkout.State.COMPLETED
            checkout.save(update_fields=["completed_at", "state"])
            reservations.take_step(actor=actor, reservation=reservation, step=Step.CHECK_IN)
        else:
            reservations.release_resources(reservation=reservation, resource_ids=returned_ids)
        audit.record(
            actor, "checkout.checked_in", library_id=checkout.library_id, patron_id=checkout.patron_id,
            checkout_id=checkout.pk, resources=wanted, completed=checkout.completed_at is not None,
            late=now > checkout.due_at,
        )  # fmt: skip
    return checkout


def renew(*, actor: audit.Actor, checkout: Checkout, now: dt.datetime | None = None) -> Checkout:
    """Extend a checkout still out: due again one loan period from now.

    The loan period is the checkout's own span (reservation start to end), capped by the center's
    ``max_duration_minutes``. Refused with every reason when the patron's standing forbids ``renew``
    (``Refused``), when everything is back (``checkout_completed``), when the new due time would not be
    later (``renewal_not_later``), and when a resource still out is booked by someone else before the new
    due time, buffers included (``resource_booked_after``). The reservation's end and its occupancy rows move
    with the due time, under the type locks, so a booking made at the same moment cannot slip in between.
    """
    with transaction.atomic():
        checkout = Checkout.objects.select_for_update().select_related("reservation").get(pk=checkout.pk)
        if checkout.completed_at is not None:
            raise Conflict("Everything in this checkout is back already.", code="checkout_completed")
        reservation = reservations.lock_reservation(checkout.reservation_id)
        when = now or clock.now()
        if checkout.patron_id is None:
            raise Conflict("This checkout's patron record is gone; it cannot be renewed.", code="patron_gone")
        patron = Patron.objects.select_for_update().get(pk=checkout.patron_id)
        decision = standing.decide(patron, Action.RENEW, at=reservation.center, now=when)
        if decision.reasons:
            raise Refused(
                f"This checkout cannot be renewed: {len(decision.reasons)} reason(s).",
                [{"code": r.code.value, "message": r.staff_message, "remedy": r.remedy} for r in decision.reasons],
            )
        period = reservation.ends_at - reservation.starts_at
        limit = reservation_queries.policy_for(reservation.center_id).max_duration_minutes
        if limit is not None:
            period = min(period, dt.timedelta(minutes=limit))
        new_due = when + period
        if new_due <= checkout.due_at:
            raise Conflict(
                "Renewing now would not make it due any later; renew closer to the due time.", code="renewal_not_later"
            )
        items = [i for i in checkout.items.select_related("resource__resource_type") if i.returned_at is None]
        types = {i.resource.resource_type_id: i.resource.resource_type for i in items}
        list(ResourceType.objects.select_for_update().filter(pk__in=sorted(types)).order_by("pk").values("pk"))
        rows = reservation.occupancies.filter(active=True, resource_id__in=[i.resource_id for i in items])
        row_ids = list(rows.values_list("pk", flat=True))
        # Our own rows would make our resources look busy: step aside, ask, and come back (or roll back).
        Occupancy.objects.filter(pk__in=row_ids).update(active=False)
        start = max(when, reservation.starts_at)
        busy = [
            i.resource.identifier
            for i in items
            if i.resource
            not in reservation_queries.free_resources(
                reservation.center, types[i.resource.resource_type_id], start, new_due
            )
        ]
        if busy:
            raise Conflict(
                f"Cannot renew: {', '.join(busy)[:200]} is booked by someone else before {new_due:%Y-%m-%d %H:%M} "
                "(UTC); return it by the due time.",
                code="resource_booked_after",
            )
        try:
            with transaction.atomic():
                for row in Occupancy.objects.filter(pk__in=row_ids).select_related("resource_type"):
                    row.blocked_until = new_due + dt.timedelta(minutes=row.resource_type.buffer_after_minutes)
                    row.active = True
                    row.save(update_fields=["blocked_until", "active"])
        except IntegrityError:  # PostgreSQL's exclusion constraint: booked a moment ago
            raise Conflict("One of these resources was booked a moment ago; return it by the due time.",
                           code="resource_booked_after") from None  # fmt: skip
        old_due = checkout.due_at
        Reservation.objects.filter(pk=reservation.pk).update(ends_at=new_due)
        checkout.due_at, checkout.state, checkout.late_since = new_due, Checkout.State.OPEN, None
        checkout.save(update_fields=["due_at", "state", "late_since"])
        audit.record(
            actor, "checkout.renewed", library_id=checkout.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, checkout_id=checkout.pk, old_due=old_due.isoformat(),
            new_due=new_due.isoformat(),
        )  # fmt: skip
    return checkout


def copy_checkout(
    *,
    actor: audit.Actor,
    checkout: Checkout,
    starts_at: dt.datetime | str,
    ends_at: dt.datetime | str,
    channel: str = Reservation.Channel.STAFF,
    override_comment: str | None = None,
) -> Reservation:
    """Book again what a completed checkout handed out: a new reservation for the same patron, center,
    title, note and pickup, with one line per resource actually handed out (substitutes included, not
    what was first reserved), for a new span. Every reservation rule applies (``create_reservation``);
    a refusal lists every reason and writes nothing."""
    checkout = Checkout.objects.select_related("reservation", "patron", "center").get(pk=checkout.pk)
    if checkout.completed_at is None:
        raise Conflict(
            "Only a completed checkout can be copied; check everything in first.", code="checkout_not_completed"
        )
    source, patron = checkout.reservation, checkout.patron
    if patron is None:  # anonymised history
        raise Conflict("This checkout's patron is no longer on record.", code="patron_gone")
    resource_ids = list(dict.fromkeys(checkout.items.order_by("id").values_list("resource_id", flat=True)))
    with transaction.atomic():
        made = reservations.create_reservation(
            actor=actor, patron=patron, center=checkout.center, starts_at=starts_at, ends_at=ends_at,
            lines=[{"resource": pk} for pk in resource_ids], title=source.title, note=source.note_to_staff,
            pickup_option=source.pickup_option, delivery_location=source.delivery_location, channel=channel,
            override_comment=override_comment,
        )  # fmt: skip
        audit.record(
            actor, "checkout.copied", library_id=checkout.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, checkout_id=checkout.pk, reservation_id=made.pk,
        )  # fmt: skip
    return made


def _parts(resource_id: int) -> list[int]:
    found: list[int] = []
    level = [resource_id]
    while level:
        level = list(Resource.objects.filter(contained_in_id__in=level).values_list("pk", flat=True))
        found += level
    return found


def _add_condition_note(resource_id: int, line: str) -> None:
    resource = Resource.objects.select_for_update().get(pk=resource_id)
    history = f"{resource.condition_notes}\n{line}".strip()
    # The field holds a bounded history: the oldest lines go first when it is full.
    while len(history) > CONDITION_NOTES_MAX and "\n" in history:
        history = history.split("\n", 1)[1]
    resource.condition_notes = history[-CONDITION_NOTES_MAX:]
    resource.save(update_fields=["condition_notes"])


# --- scheduled jobs -------------------------------------------------------------------------------------


def mark_late(*, actor: audit.Actor, now: dt.datetime | None = None) -> list[int]:
    """Mark open checkouts whose end has passed as late. One conditional UPDATE per checkout, so a second
    run (or a second worker) finds nothing left to mark."""
    now = now or clock.now()
    marked = []
    for pk in Checkout.objects.filter(state=Checkout.State.OPEN, due_at__lt=now).values_list("pk", flat=True):
        with transaction.atomic():
            if Checkout.objects.filter(pk=pk, state=Checkout.State.OPEN).update(
                state=Checkout.State.LATE, late_since=now
            ):
                checkout = Checkout.objects.get(pk=pk)
                audit.record(actor, "checkout.late", library_id=checkout.library_id, patron_id=checkout.patron_id,
                             checkout_id=pk)  # fmt: skip
                marked.append(pk)
    return marked


def invoice_overdue(*, actor: audit.Actor, now: dt.datetime | None = None) -> list[int]:
    """Raise the center's overdue fee, once, for each checkout returned or still out after its end plus
    the grace time. Centers without an ``overdue_fee`` invoice nothing. Returns the new fees' ids."""
    now = now or clock.now()
    candidates = list(
        Checkout.objects.filter(due_at__lt=now, overdue_invoice__isnull=True, patron__isnull=False)
        .exclude(completed_at__isnull=False, completed_at__lte=F("due_at"))
        .values_list("pk", "center_id", "due_at", "completed_at")
    )
    policies = {c: reservation_queries.policy_for(c) for c in {row[1] for row in candidates}}
    raised = []
    for pk, center_id, due_at, completed_at in candidates:
        policy = policies[center_id]
        if policy.overdue_fee is None:
            continue
        if (completed_at or now) <= due_at + dt.timedelta(minutes=policy.overdue_grace_minutes):
            continue
        try:
            with transaction.atomic():
                # Only the checkout's row: its patron may be NULL (anonymised history), and add_fee locks the patron.
                checkout = (
                    Checkout.objects.select_for_update(of=("self",)).select_related("patron", "center").get(pk=pk)
                )
                if OverdueInvoice.objects.filter(checkout=checkout).exists() or checkout.patron is None:
                    continue  # another worker invoiced it meanwhile, or its history was anonymised
                zone = ZoneInfo(checkout.center.library.time_zone)
                fee = fines.add_fee(
                    actor=actor, patron=checkout.patron, amount=policy.overdue_fee, kind=Fee.Kind.OVERDUE,
                    branch=checkout.center_id,
                    description=f"Late return: checkout {checkout.pk}, due {checkout.due_at.astimezone(zone):%Y-%m-%d %H:%M}",
                )  # fmt: skip
                OverdueInvoice.objects.create(checkout=checkout, fee=fee, created_at=now)
                raised.append(fee.pk)
        except IntegrityError:
            continue  # the unique checkout: another worker's invoice won
    return raised


def release_no_shows(*, actor: audit.Actor, now: dt.datetime | None = None) -> list[int]:
    return reservations.release_no_shows(actor=actor, now=now)


JOBS: dict[str, Callable[..., list[int]]] = {
    "mark_late": mark_late,
    "invoice_overdue": invoice_overdue,
    "release_no_shows": release_no_shows,
    "anonymise_history": retention.anonymise_history,
}


def run_job(name: str, *, now: dt.datetime | None = None) -> list[int]:
    """Run one scheduled job as the system and record when it ran and what it did."""
    actor = audit.Actor.system()
    started = clock.now()
    result = JOBS[name](actor=actor, now=now)
    record_job_run(name, started, result)
    return result


def record_job_run(name: str, started: dt.datetime, result: list[int]) -> None:
    """Note that the scheduled job ``name`` ran from ``started`` until now and what it did (shown on the jobs page)."""
    try:
        with transaction.atomic():
            JobRun.objects.get_or_create(name=name)
    except IntegrityError:
        pass  # another worker created the row a moment ago
    with transaction.atomic():
        run = JobRun.objects.select_for_update().get(name=name)
        run.last_started_at, run.last_finished_at = started, clock.now()
        run.last_outcome = {"count": len(result), "ids": result[:100]}
        run.runs += 1
        run.save()
