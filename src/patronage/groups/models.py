"""Patron groups: linked accounts such as a family, at one library."""

from __future__ import annotations

from django.db import models

from patronage.libraries.models import Library
from patronage.patrons.models import Patron


class PatronGroup(models.Model):
    """Linked accounts at one library. A group exists only while it has members."""

    class Kind(models.TextChoices):
        FAMILY = "family", "Family"
        HOUSEHOLD = "household", "Household"
        CLASS = "class", "Class"
        ORGANISATION = "organisation", "Organisation"

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=150)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.FAMILY)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class GroupMember(models.Model):
    """One patron's place in a group. A patron is in at most one group at their library."""

    class Role(models.TextChoices):
        NONE = "", "Member"
        GUARDIAN = "guardian", "Guardian"

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    group = models.ForeignKey(PatronGroup, on_delete=models.CASCADE, related_name="members")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="group_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.NONE, blank=True)
    joined_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["library", "patron"], name="group_member_one_group_per_library"),
        ]
        indexes = [models.Index(fields=["group", "patron"], name="group_member_by_group")]
        ordering = ["joined_at", "id"]

    def __str__(self) -> str:
        return f"Patron {self.patron_id} in group {self.group_id}"
