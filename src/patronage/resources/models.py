"""What a checkout center lends: resource types (a tree), resources, and patrons' authorizations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron


class ResourceType(models.Model):
    """A kind of resource ("Cameras", under it "DSLR cameras"). Lent by the checkout centers in ``centers``.

    ``requires_authorization`` and a hidden portal flag hold for the subtypes too; buffers are the type's own.
    """

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="resource_types")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    requires_authorization = models.BooleanField(
        default=False, help_text="Only patrons authorized for this type (or a type above it) may reserve it."
    )
    visible_in_portal = models.BooleanField(default=True, help_text="Off: patrons cannot see or reserve it.")
    buffer_before_minutes = models.PositiveIntegerField(default=0, help_text="Kept free before each booking.")
    buffer_after_minutes = models.PositiveIntegerField(default=0, help_text="Kept free after each booking.")
    centers = models.ManyToManyField(Branch, blank=True, related_name="+", help_text="Checkout centers lending it.")

    class Meta:
        constraints = [
            # NULL parents are distinct in a plain unique constraint, so top-level names get their own.
            models.UniqueConstraint(fields=["library", "parent", "name"], name="resource_type_name_per_parent"),
            models.UniqueConstraint(
                fields=["library", "name"], condition=Q(parent__isnull=True), name="resource_type_name_top_level"
            ),
        ]
        ordering = ["library", "name"]

    def __str__(self) -> str:
        return self.name


class Resource(models.Model):
    """One lendable thing. A kit's parts point at the kit (``contained_in``); booking a kit books its parts."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="resources")
    resource_type = models.ForeignKey(ResourceType, on_delete=models.PROTECT, related_name="resources")
    center = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+", help_text="Lent from here.")
    identifier = models.CharField(max_length=64, help_text="The barcode or inventory number.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    condition_notes = models.TextField(blank=True, max_length=5000)
    accessories = models.TextField(blank=True, max_length=2000)
    contained_in = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="parts")
    out_of_service_from = models.DateTimeField(
        null=True, blank=True, help_text="Empty: in service. Set: out of service from then on."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["library", "identifier"], name="resource_identifier_per_library"),
        ]
        indexes = [models.Index(fields=["center", "resource_type"], name="resource_center_type")]
        ordering = ["library", "name", "identifier"]

    def __str__(self) -> str:
        return f"{self.name} ({self.identifier})"


class Authorization(models.Model):
    """A patron may reserve resources of this type (and its subtypes), until ``expires_on`` if set."""

    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="resource_authorizations")
    resource_type = models.ForeignKey(ResourceType, on_delete=models.CASCADE, related_name="authorizations")
    granted_at = models.DateTimeField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_on = models.DateField(null=True, blank=True, help_text="Last day it holds; empty: no end.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patron", "resource_type"], name="authorization_once_per_type"),
        ]

    def __str__(self) -> str:
        return f"{self.patron_id} may use {self.resource_type_id}"
