"""Recording and scrubbing audit events. Services call ``record`` inside their transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User

from . import clock
from .models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts, through which face, from where. Faces build one per request."""

    user: User | AnonymousUser | None
    channel: str = AuditEvent.Channel.STAFF
    source_ip: str | None = None
    # Who acts without a staff account, e.g. "patron 42" for a patron in the portal; empty: the channel.
    name: str = ""

    @property
    def label(self) -> str:
        if self.user is None or isinstance(self.user, AnonymousUser):
            return self.name or self.channel
        return self.user.get_username()

    @property
    def account(self) -> User | None:
        """The signed-in staff account, or None for the system, the CLI and patrons."""
        if self.user is None or isinstance(self.user, AnonymousUser) or not self.user.is_authenticated:
            return None
        return self.user

    @classmethod
    def system(cls) -> Actor:
        return cls(user=None, channel=AuditEvent.Channel.SYSTEM)

    @classmethod
    def cli(cls) -> Actor:
        return cls(user=None, channel=AuditEvent.Channel.CLI)

    @classmethod
    def patron(cls, patron_id: int, source_ip: str | None = None) -> Actor:
        """A patron acting on their own account through the portal (no staff account involved)."""
        return cls(user=None, channel=AuditEvent.Channel.PORTAL, source_ip=source_ip, name=f"patron {patron_id}")


def record(
    actor: Actor,
    action: str,
    *,
    library_id: int | None = None,
    patron_id: int | None = None,
    patron_label: str = "",
    **detail: Any,
) -> AuditEvent:
    return AuditEvent.objects.create(
        at=clock.now(),
        actor=actor.account,
        actor_label=actor.label[:150],
        library_id=library_id,
        patron_id=patron_id,
        patron_label=patron_label[:300],
        action=action,
        detail=detail,
        channel=actor.channel,
        source_ip=actor.source_ip,
    )


def forget_patron(patron_id: int) -> int:
    """Keep a deleted patron's events but drop the personal data they showed."""
    return AuditEvent.objects.filter(patron_id=patron_id).update(patron_label="")
