from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One staff action or one read of a patron's personal data.

    Library and patron are kept as plain ids, not foreign keys, so the event outlives a deleted
    patron; ``patron_label`` (the name shown in the log) is blanked when the patron is deleted.
    ``detail`` holds ids, field names and amounts, never personal data.
    """

    class Channel(models.TextChoices):
        STAFF = "staff", "Staff pages"
        API = "api", "REST API"
        PORTAL = "portal", "Patron portal"
        CLI = "cli", "Command line"
        SYSTEM = "system", "System"

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    library_id = models.BigIntegerField(null=True, blank=True)
    patron_id = models.BigIntegerField(null=True, blank=True)
    patron_label = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.STAFF)
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["library_id", "-at"], name="audit_library_at"),
            models.Index(fields=["patron_id", "-at"], name="audit_patron_at"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
        ]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class CredentialFailures(models.Model):
    """Failed credential checks counted per key (an account or an address) in one scope.

    Kept in the database so every app process and the SIP2/NCIP servers share one count.
    """

    scope = models.CharField(max_length=32)
    key = models.CharField(max_length=200)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="credential_failures_scope_key")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} ({self.failures})"
