from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patronage.libraries.models import Library
from patronage.patrons.models import Patron


class Block(models.Model):
    """A manual restriction placed by staff at one library. Lifted blocks stay as history."""

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="blocks")
    comment = models.TextField(max_length=2000)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=150)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until lifted by staff.")
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_by_label = models.CharField(max_length=150, blank=True)
    lift_comment = models.TextField(max_length=2000, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["patron"], condition=Q(lifted_at__isnull=True), name="block_open_by_patron"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Block {self.pk} on patron {self.patron_id}"
