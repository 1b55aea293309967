"""Recording and scrubbing audit events. Services call ``record`` inside their transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

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


_COLUMNS = ("at", "actor", "actor_label", "library_id", "patron_id", "patron_label", "action", "detail", "channel",
            "source_ip")  # fmt: skip


_statements: dict[str, tuple[str, bool]] = {}


def _insert(connection: BaseDatabaseWrapper) -> tuple[str, bool]:
    """The INSERT for the connection's database, and whether it returns the new id. Written once per kind of
    database instead of compiled by the ORM on every call: every protocol request records one or two
    events (docs/performance.md)."""
    key = f"{connection.vendor}:{connection.features.can_return_columns_from_insert}"
    if key not in _statements:
        _statements[key] = _build_insert(connection)
    return _statements[key]


def _build_insert(connection: BaseDatabaseWrapper) -> tuple[str, bool]:
    quote = connection.ops.quote_name
    fields = [AuditEvent._meta.get_field(name) for name in _COLUMNS]
    columns = ", ".join(quote(str(f.column)) for f in fields)  # type: ignore[union-attr]
    returning = bool(connection.features.can_return_columns_from_insert)
    sql = f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})" + (
        f" RETURNING {quote(AuditEvent._meta.pk.column)}" if returning else ""
    )
    return sql, returning


def record(
    actor: Actor,
    action: str,
    *,
    library_id: int | None = None,
    patron_id: int | None = None,
    patron_label: str = "",
    **detail: Any,
) -> AuditEvent:
    """Write one event (in the caller's transaction, if any) and return it."""
    event = AuditEvent(
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
    alias = router.db_for_write(AuditEvent)
    connection = connections[alias]
    sql, returning = _insert(connection)
    values = [
        field.get_db_prep_save(getattr(event, field.attname), connection)  # type: ignore[union-attr]
        for field in (AuditEvent._meta.get_field(name) for name in _COLUMNS)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        event.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    event._state.adding = False
    event._state.db = alias
    return event


def forget_patron(patron_id: int) -> int:
    """Keep a deleted patron's events but drop the personal data they showed."""
    return AuditEvent.objects.filter(patron_id=patron_id).update(patron_label="")
