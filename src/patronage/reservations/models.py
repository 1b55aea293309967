"""Reservations of resources, their checkout-center policies, and the occupancy rows that stop double booking."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron
from patronage.resources.models import Resource, ResourceType

from .rules import State


class CenterPolicy(models.Model):
    """The reservation rules of one checkout center. A center without a row uses the field defaults."""

    center = models.OneToOneField(Branch, on_delete=models.CASCADE, related_name="reservation_policy")
    min_lead_minutes = models.PositiveIntegerField(
        default=0, help_text="How long before its start a booking must be made."
    )
    max_duration_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    max_open_reservations = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Per patron, every occurrence of a series and pending ones counted. Empty: no limit.",
    )
    approval_required = models.BooleanField(default=False, help_text="Portal reservations wait for staff approval.")
    title_required = models.BooleanField(default=False, help_text="An event or class title must be given.")
    desk_pickup = models.BooleanField(default=True, help_text="Patrons may pick up at the desk.")
    delivery_locations = models.JSONField(default=list, blank=True, help_text="Places resources can be delivered to.")
    signature_required = models.BooleanField(default=False, help_text="The patron must have a signature on file.")
    series_horizon_days = models.PositiveIntegerField(default=180, help_text="How far ahead a series may book.")
    series_max_occurrences = models.PositiveIntegerField(default=52)
    open_hours = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per weekday, local [start, end] times for pickup and return, e.g. {"mon": [["09:00", "17:00"]]}. '
        "Empty: no limit; a day left out: closed.",
    )
    no_show_minutes = models.PositiveIntegerField(default=30, help_text="How long an uncollected reservation is held.")
    overdue_fee = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Flat fee invoiced once per checkout returned (or still out) after its end and the grace time. "
        "Empty: no invoice.",
    )
    overdue_grace_minutes = models.PositiveIntegerField(
        default=0, help_text="How long after its end a late checkout is invoiced."
    )
    portal_message = models.TextField(
        blank=True, help_text="Shown on the portal dashboard; HTML, cleaned on save (images need alt text)."
    )
    problem_reports_enabled = models.BooleanField(default=True, help_text="Patrons may report a problem here.")
    calendar_feed_enabled = models.BooleanField(default=True, help_text="Patrons may subscribe to a calendar feed.")

    def __str__(self) -> str:
        return f"Policy of {self.center_id}"


class ReservationSeries(models.Model):
    """A repeating reservation: the rule it was made from. Its occurrences are independent reservations."""

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    center = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="reservation_series")
    rule = models.TextField(max_length=1000, help_text="RFC 5545 recurrence rule, on the center's local time.")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "reservation series"

    def __str__(self) -> str:
        return f"Series {self.pk}"


class Reservation(models.Model):
    """A patron's claim on resources of one checkout center for a span (instants, UTC)."""

    class PickupOption(models.TextChoices):
        DESK = "desk", "At the desk"
        DELIVERY = "delivery", "Delivery"

    class Channel(models.TextChoices):
        STAFF = "staff", "Staff"
        PORTAL = "portal", "Portal"
        API = "api", "API"

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    center = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    # Nullable for anonymised history (circulation.retention); open reservations still refuse the patron's
    # deletion through the privacy registry, so SET_NULL only ever reaches history.
    patron = models.ForeignKey(Patron, null=True, blank=True, on_delete=models.SET_NULL, related_name="reservations")
    series = models.ForeignKey(
        ReservationSeries, null=True, blank=True, on_delete=models.CASCADE, related_name="occurrences"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    title = models.CharField(max_length=200, blank=True, help_text="Event or class title.")
    note_to_staff = models.TextField(max_length=2000, blank=True)
    pickup_option = models.CharField(max_length=16, choices=PickupOption.choices, default=PickupOption.DESK)
    delivery_location = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=32, choices=[(s.value, s.label) for s in State])
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    operator_label = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    override_comment = models.TextField(max_length=2000, blank=True, help_text="Why staff overrode rules.")
    overridden = models.JSONField(default=list, blank=True, help_text="Codes of the rules overridden.")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="reservation_ends_after_start")
        ]
        indexes = [
            models.Index(fields=["patron", "state"], name="reservation_patron_state"),
            models.Index(fields=["center", "starts_at"], name="reservation_center_start"),
        ]
        ordering = ["starts_at", "id"]

    def __str__(self) -> str:
        return f"Reservation {self.pk}"


class ReservationLine(models.Model):
    """A specific resource, or ``quantity`` units of a type ("one of this type")."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    resource_type = models.ForeignKey(ResourceType, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(resource__isnull=False, resource_type__isnull=True, quantity=1)
                    | Q(resource__isnull=True, resource_type__isnull=False, quantity__gte=1)
                ),
                name="line_resource_or_type",
            )
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Line {self.pk}"


class ReservationEvent(models.Model):
    """One state change of a reservation (creation has an empty ``from_state``): who, when, why."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    by_label = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=16)
    comment = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or 'new'} -> {self.to_state}"


class Occupancy(models.Model):
    """The time one reservation blocks one resource (``resource`` set) or units of a type (a type hold).

    ``[blocked_from, blocked_until)`` is the reservation's span widened by the type's buffers. Only active
    rows block; a reservation that ends in any way deactivates its rows at once. On PostgreSQL an
    exclusion constraint (migration 0002) refuses two active rows for one resource that overlap.
    """

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="occupancies")
    line = models.ForeignKey(ReservationLine, on_delete=models.CASCADE, related_name="occupancies")
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.PROTECT, related_name="occupancies")
    # For a specific resource: its type and center, kept here so a type's bookings are found by one index.
    resource_type = models.ForeignKey(ResourceType, on_delete=models.PROTECT, related_name="+")
    center = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    blocked_from = models.DateTimeField()
    blocked_until = models.DateTimeField()
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(blocked_until__gt=models.F("blocked_from")), name="occupancy_positive_span"
            ),
            models.CheckConstraint(
                condition=Q(resource__isnull=True, quantity__gte=1) | Q(resource__isnull=False, quantity=1),
                name="occupancy_quantity",
            ),
        ]
        indexes = [
            models.Index(
                fields=["resource", "blocked_from"], condition=Q(active=True), name="occupancy_active_resource"
            ),
            models.Index(
                fields=["center", "resource_type", "blocked_from"],
                condition=Q(active=True),
                name="occupancy_active_type",
            ),
        ]
        verbose_name_plural = "occupancies"

    def __str__(self) -> str:
        return f"{self.resource_id or self.resource_type_id} {self.blocked_from:%Y-%m-%d %H:%M}"
