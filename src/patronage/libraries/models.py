from __future__ import annotations

import zoneinfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from .permissions import Permission

code_validator = RegexValidator(r"^[A-Za-z0-9_-]+$", "Use letters, digits, '-' and '_' only.")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name such as Europe/Oslo.")


def validate_region(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"{value!r} is not a two-letter country code such as US or NO.")


class Library(models.Model):
    """One institution: the unit of data ownership (patrons, staff, money, time zone)."""

    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code, e.g. USD.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    country = models.CharField(
        max_length=2, default="US", validators=[validate_region], help_text="For phone numbers: ISO 3166 code."
    )
    lending_history_retention_days = models.PositiveIntegerField(
        "Lending history retention (days)",
        null=True,
        blank=True,
        default=365,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Completed reservations and checkouts older than this lose their link to the patron, unless "
        "the patron chose to keep their history. 1 to 3650 days; empty: keep forever.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "libraries"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Branch(models.Model):
    """A place of a library. One that lends is a checkout center in the portal."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="branches")
    code = models.CharField(max_length=32, validators=[code_validator])
    name = models.CharField(max_length=200)
    is_checkout_center = models.BooleanField(default=False)
    email = models.EmailField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["library", "code"], name="branch_code_per_library")]
        ordering = ["library", "name"]
        verbose_name_plural = "branches"

    def __str__(self) -> str:
        return self.name


class Role(models.Model):
    """A named set of permissions at one library."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=100)
    permissions = models.JSONField(default=list, help_text="Permission codes.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["library", "name"], name="role_name_per_library")]
        ordering = ["library", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.library.code})"

    def clean(self) -> None:
        unknown = set(self.permissions) - {p.value for p in Permission}
        if unknown:
            raise ValidationError({"permissions": f"Unknown permissions: {', '.join(sorted(unknown))}."})


class Membership(models.Model):
    """A staff account's place at one library, with its roles there."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="memberships")
    roles = models.ManyToManyField(Role, blank=True, related_name="memberships")
    home_branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "library"], name="membership_once_per_library")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.library.code}"
