"""Making, checking and revoking API tokens."""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from patronage.core import audit, clock
from patronage.core.errors import FieldError, NotFound
from patronage.core.tokens import digest

from .models import ApiToken

TOKEN_PREFIX = "pat_"  # noqa: S105 - a public marker, not a secret
# Last-used times are written at most this often, so busy clients do not write on every call.
_LAST_USED_RESOLUTION = dt.timedelta(minutes=5)


def create_token(*, user: AbstractBaseUser, name: str, expires_at: dt.datetime | None,
                 actor: audit.Actor | None = None) -> tuple[ApiToken, str]:  # fmt: skip
    """Make a token for ``user``; returns the row and the token text, which is never shown again."""
    name = (name or "").strip()
    if not name:
        raise FieldError("name", "Give the token a name that says where it is used, e.g. 'self-check kiosk'.")
    if len(name) > 100:
        raise FieldError("name", "Keep the name to 100 characters or fewer.")
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise FieldError("expires_at", "The expiry must lie in the future; leave it empty for no expiry.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,  # type: ignore[misc]
            name=name,
            prefix=raw[:12],
            digest=digest(raw),
            created_at=now,
            expires_at=expires_at,
        )
        audit.record(actor or audit.Actor(user=user), "api_token.create", token_id=token.pk, token_name=name)  # type: ignore[arg-type]
    return token, raw


def user_for_token(raw: str) -> tuple[AbstractBaseUser, ApiToken] | None:
    """The active account behind a live token, or None (unknown, revoked, expired, inactive)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    now = clock.now()
    token = ApiToken.objects.select_related("user").filter(digest=digest(raw), revoked_at__isnull=True).first()
    if token is None or (token.expires_at is not None and token.expires_at <= now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


def tokens_of(user: AbstractBaseUser) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user_id=user.pk))


def revoke_token(*, actor: audit.Actor, token_id: int, owner: AbstractBaseUser | None = None) -> ApiToken:
    """Revoke one of ``owner``'s tokens (``actor``'s own when no owner is given). Revoking twice is harmless."""
    account = owner if owner is not None else actor.account
    if account is None:
        raise NotFound("No such token.")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, user_id=account.pk).first()
        if token is None:
            raise NotFound("No such token.")
        if token.revoked_at is None:
            token.revoked_at = clock.now()
            token.save(update_fields=["revoked_at"])
            audit.record(actor, "api_token.revoke", token_id=token.pk, token_name=token.name)
    return token
