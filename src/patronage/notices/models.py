"""A library's reminder-notice settings: when each reminder goes and which ones patrons may opt out of."""

from __future__ import annotations

from django.db import models

from patronage.libraries.models import Library


class NoticeSettings(models.Model):
    """Set by the library's administrators (library level; per-branch profiles are planned, see the docs).

    A library without a row uses the defaults of the fields. A window of 0 turns that reminder off.
    """

    library = models.OneToOneField(Library, on_delete=models.CASCADE, related_name="notice_settings")
    almost_overdue_hours = models.PositiveIntegerField(
        default=24, help_text="Remind this many hours before a checkout is due; 0: no almost-overdue reminders."
    )
    expiration_days = models.PositiveIntegerField(
        default=14, help_text="Remind this many days before a record expires; 0: no expiry reminders."
    )
    inactive_days = models.PositiveIntegerField(
        default=365, help_text="Notify a patron who has not checked anything out for this many days; 0: never."
    )
    send_overdue = models.BooleanField(default=True, help_text="Send overdue and invoice notices (no opt-out).")
    may_opt_out_almost_overdue = models.BooleanField(
        default=True, help_text="Patrons may opt out of almost-overdue reminders."
    )
    may_opt_out_record_expiration = models.BooleanField(
        default=True, help_text="Patrons may opt out of record-expiration reminders."
    )
    may_opt_out_inactive = models.BooleanField(
        default=True, help_text="Patrons may opt out of inactive-patron notices."
    )
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Notice settings of {self.library_id}"

    @property
    def optional_kinds(self) -> frozenset[str]:
        """The kinds of notice this library lets patrons opt out of."""
        allowed = {
            "almost_overdue": self.may_opt_out_almost_overdue,
            "record_expiration": self.may_opt_out_record_expiration,
            "inactive": self.may_opt_out_inactive,
        }
        return frozenset(code for code, on in allowed.items() if on)
