"""The persistent e-mail outbox: one row per message, written in the transaction of the change that causes it."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from patronage.libraries.models import Library


class OutboxMessage(models.Model):
    """One e-mail message waiting to be sent, sent, or given up on.

    The row is the message: everything needed to send it (and to send it again, with the same
    Message-ID) is stored when it is queued, so the worker needs nothing else.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # The patron the message is about, as a plain id (the outbox sits below patrons), for privacy work.
    patron_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    kind = models.CharField(max_length=64, help_text="What the message is, e.g. password_link, almost_overdue.")
    dedupe_key = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text="Queuing a second message with this key does nothing.",
    )
    message_id = models.CharField(max_length=255, unique=True)
    from_email = models.CharField(max_length=254)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=255)
    text = models.TextField()
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            # The worker's question: which pending messages are due, oldest first.
            models.Index(fields=["next_attempt_at", "id"], condition=Q(state="pending"), name="outbox_due"),
            models.Index(fields=["library", "state", "-created_at"], name="outbox_library_state"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} to {', '.join(self.to)} ({self.state})"
