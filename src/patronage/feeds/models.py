"""A patron's calendar feed address: a long random token, kept only as a salt and a digest."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from patronage.patrons.models import Patron


class CalendarFeed(models.Model):
    """One feed address of a patron. At most one is live; revoking or re-issuing sets ``revoked_at``.

    The token is an HMAC of ``salt`` under the installation's secret key, so the page can show the
    address again and e-mail it, while a copy of the database alone does not give the address away.
    ``digest`` (SHA-256 of the token) finds the feed when a calendar asks for it.
    """

    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="calendar_feeds")
    salt = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patron"], condition=Q(revoked_at__isnull=True), name="one_live_feed")
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Calendar feed {self.pk}"
