"""Online account updates: the patron access options, the patrons' update requests and the postal codes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron


class ChangeMode(models.TextChoices):
    """How a patron may change one kind of contact detail in the portal."""

    OFF = "off", "Not allowed online"
    REQUEST = "request", "Patron can submit a change request (staff verify it)"
    DIRECT = "direct", "Patron can change without verification"


class AccessOptions(models.Model):
    """The patron access options of a library (``branch`` empty) or of one branch's profile.

    An empty value means "as the level above": a branch profile falls back to the library's options, the
    library's to the system defaults (``services.SYSTEM_DEFAULTS``). Phone validation is system level only
    (the setting ``PATRONAGE_PHONE_VALIDATION``), and which patron types may update online is the flag
    ``PatronType.may_self_update``; neither is stored here.
    """

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="+")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    may_change_notification_method = models.BooleanField(null=True, blank=True)
    confirmation_email = models.BooleanField(null=True, blank=True)
    address_change = models.CharField(max_length=16, choices=ChangeMode.choices, blank=True)
    email_change = models.CharField(max_length=16, choices=ChangeMode.choices, blank=True)
    phone_change = models.CharField(max_length=16, choices=ChangeMode.choices, blank=True)
    # Library profile only: the branch whose options a visitor who is not signed in gets (see the docs).
    connection_branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["library"], condition=Q(branch__isnull=True), name="access_options_library"
            ),
            models.UniqueConstraint(fields=["branch"], condition=Q(branch__isnull=False), name="access_options_branch"),
        ]
        verbose_name_plural = "access options"

    def __str__(self) -> str:
        return f"Access options of {self.branch_id or 'library'} at {self.library_id}"


class UpdateRequest(models.Model):
    """A patron's requested change of contact details, pending until staff verify or reject it.

    ``old`` and ``new`` hold the requested fields only, as the portal sent them: ``primary_email``,
    ``alternate_email``, ``phones`` ({kind: number}) and ``addresses`` (the whole list).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for the library"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="+")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="update_requests")
    # The patron's registered branch when the request came: the queue it waits in.
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    old = models.JSONField(default=dict)
    new = models.JSONField(default=dict)
    reason = models.TextField(blank=True, max_length=1000, help_text="Why it was rejected; the patron sees it.")
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_label = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [
            # One request waits at a time: a second would have to be merged into the first by staff.
            models.UniqueConstraint(fields=["patron"], condition=Q(state="pending"), name="one_pending_update_request"),
        ]
        indexes = [models.Index(fields=["library", "state", "branch", "created_at"], name="update_request_queue")]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Update request {self.pk} of patron {self.patron_id} ({self.state})"


class PostalCode(models.Model):
    """A postal code the library knows; addresses entered in the portal must use one (when any exist)."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=20, help_text="Stored in capitals with single spaces, e.g. SW1A 1AA.")
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["library", "code"], name="postal_code_per_library")]
        ordering = ["library", "code"]

    def __str__(self) -> str:
        return self.code
