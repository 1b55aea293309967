from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer credential for the REST API, acting as one staff account.

    Only a SHA-256 digest of the token is stored; the token itself is shown once, when it is
    made. ``prefix`` (the first characters) lets staff tell their tokens apart in lists.
    The token carries exactly the permissions of its account, at the account's libraries.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyKey(models.Model):
    """The stored answer to one API request sent with an ``Idempotency-Key`` header (``api.idempotency``).

    ``fingerprint`` is a SHA-256 of the method, the path and the request body (as canonical JSON), so the
    same key with another request is told apart. Only finished answers are ever committed: the row is
    written in the same transaction as the action, so it exists exactly when the action happened (or was
    refused with a 4xx). Rows older than ``idempotency.LIFETIME`` are ignored and purged.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(default=0)
    response_body = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="api_idempotency_user_key")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key[:20]})"
