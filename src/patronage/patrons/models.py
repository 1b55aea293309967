from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from patronage.libraries.models import Branch, Library, code_validator


class PatronType(models.Model):
    """Carries policy for the patrons of that type (a "patron code" in some systems)."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="patron_types")
    code = models.CharField(max_length=32, validators=[code_validator])
    name = models.CharField(max_length=100)
    fine_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("5.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="A patron whose own balance is strictly greater than this may not borrow.",
    )
    expiry_months = models.PositiveIntegerField(default=12, help_text="How long a new or renewed record lasts.")
    may_self_update = models.BooleanField(default=True, help_text="May request contact changes online.")
    may_use_ill = models.BooleanField(default=False, help_text="May request through interlibrary loan.")
    loan_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Open loans at once; empty: no limit.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["library", "code"], name="patron_type_code_per_library")]
        ordering = ["library", "name"]

    def __str__(self) -> str:
        return self.name


class Patron(models.Model):
    """A person's account at one library."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"

    class NotificationMethod(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "Text message"
        PHONE = "phone", "Phone call"
        MAIL = "mail", "Post"
        NONE = "none", "No notices"

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="patrons")
    patron_type = models.ForeignKey(PatronType, on_delete=models.PROTECT, related_name="patrons")
    registered_branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="registered_patrons")
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    birth_date = models.DateField(null=True, blank=True)
    # NULL, not "", for "no Person-ID": the unique constraint per library must let many patrons have none.
    person_id = models.CharField(  # noqa: DJ001
        "Person-ID", max_length=64, null=True, blank=True, help_text="The institution's id for this person."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    expires_on = models.DateField()
    signature_on_file = models.BooleanField(default=False)
    staff_notes = models.TextField(blank=True, max_length=5000)
    primary_email = models.EmailField(max_length=254, blank=True)
    alternate_email = models.EmailField(max_length=254, blank=True)
    notification_method = models.CharField(
        max_length=16, choices=NotificationMethod.choices, default=NotificationMethod.EMAIL
    )
    keep_lending_history = models.BooleanField(
        default=False,
        help_text="The patron chose to keep their completed reservations and checkouts beyond the library's "
        "retention period.",
    )
    # Reminder notices the patron asked not to get (honoured when the library lets patrons opt out of
    # that kind; overdue and invoice notices always go). See docs/subsystems/notices.md.
    opt_out_almost_overdue = models.BooleanField(
        "No almost-overdue reminders", default=False, help_text="Do not send reminders before items are due."
    )
    opt_out_record_expiration = models.BooleanField(
        "No expiry reminders", default=False, help_text="Do not send reminders before the record expires."
    )
    opt_out_inactive = models.BooleanField(
        "No inactive-patron notices", default=False, help_text="Do not send notices about an unused account."
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["library", "person_id"], name="person_id_per_library"),
        ]
        indexes = [
            models.Index(models.F("library"), Lower("last_name"), Lower("first_name"), name="patron_name_lower"),
            models.Index(Lower("primary_email"), name="patron_email_lower"),
            models.Index(Lower("alternate_email"), name="patron_alt_email_lower"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return f"{self.last_name}, {self.first_name}"


class Barcode(models.Model):
    """A card number. A patron has many over time and at most one active; old ones stay as history."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="+")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="barcodes")
    number = models.CharField(max_length=64)
    is_active = models.BooleanField(default=True)
    issued_at = models.DateTimeField()
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["library", "number"], name="barcode_unique_per_library"),
            models.UniqueConstraint(fields=["patron"], condition=Q(is_active=True), name="one_active_barcode"),
        ]
        # The staff search matches a typed text against barcodes of every library in scope, so it looks up
        # by number alone; the unique index above leads with the library and cannot serve that.
        indexes = [models.Index(fields=["number"], name="barcode_number")]
        ordering = ["-is_active", "-issued_at"]

    def __str__(self) -> str:
        return self.number


class Address(models.Model):
    class Kind(models.TextChoices):
        HOME = "home", "Home"
        MAILING = "mailing", "Mailing"
        WORK = "work", "Work"
        TEMPORARY = "temporary", "Temporary"

    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="addresses")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HOME)
    line1 = models.CharField("Street address", max_length=200)
    line2 = models.CharField("Address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100)
    region = models.CharField("State or region", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patron", "kind"], name="one_address_per_kind")]

    def __str__(self) -> str:
        return f"{self.line1}, {self.city}"


class Phone(models.Model):
    class Kind(models.TextChoices):
        MOBILE = "mobile", "Mobile"
        HOME = "home", "Home"
        WORK = "work", "Work"

    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="phones")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MOBILE)
    number = models.CharField(max_length=32, db_index=True, help_text="E.164, e.g. +15555550123.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patron", "kind"], name="one_phone_per_kind")]

    def __str__(self) -> str:
        return self.number
