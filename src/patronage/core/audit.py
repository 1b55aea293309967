"""Recording and scrubbing audit events. Services call ``record`` inside their transaction."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

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


_statements: dict[tuple[str, bool], str] = {}


def _insert(connection: BaseDatabaseWrapper, *, waits: bool) -> str:
    """The INSERT for the connection's database. Written once per kind of database instead of compiled by
    the ORM on every call: every protocol request records one event (docs/performance.md)."""
    key = (connection.vendor, waits)
    if key not in _statements:
        _statements[key] = _build_insert(connection, waits)
    return _statements[key]


def _build_insert(connection: BaseDatabaseWrapper, waits: bool) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(AuditEvent._meta.get_field(name).column)) for name in _COLUMNS)  # type: ignore[union-attr]
    sql = f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
    if not waits and connection.vendor == "postgresql":
        # The statement is its own transaction (the caller checked): setting synchronous_commit for that
        # transaction alone, from inside the statement, makes its commit skip the wait for the WAL flush
        # without a BEGIN, a SET LOCAL and a COMMIT of its own (three more round trips).
        sql += " RETURNING set_config('synchronous_commit', 'off', true)"
    return sql


def record(
    actor: Actor,
    action: str,
    *,
    library_id: int | None = None,
    patron_id: int | None = None,
    patron_label: str = "",
    **detail: Any,
) -> None:
    """Write one event, in the caller's transaction if any."""
    _write(actor, action, library_id, patron_id, patron_label, detail, waits=True)


def record_read(
    actor: Actor,
    action: str,
    *,
    library_id: int | None = None,
    patron_id: int | None = None,
    patron_label: str = "",
    **detail: Any,
) -> None:
    """Write one event that records a *read* of personal data, which changes nothing.

    Inside a transaction it is ``record``: the event commits with the caller's work. Outside one, on
    PostgreSQL, its commit does not wait for the write-ahead log to reach the disk (``synchronous_commit``
    off for that one statement), unless ``PATRONAGE_AUDIT_READS_SYNCHRONOUS`` is on. The event is written and
    visible at once either way; only a crash of the database server within about half a second after it, or
    a failover to a standby in those moments (the commit waits for no standby either), could lose it (never
    half of it). A self-check machine's or a vendor's every request writes one of these,
    and waiting for the disk on each was most of their latency under load (docs/performance.md, SIP2).
    Changes (loans, payments, blocks, patron records) always wait: they use ``record`` in their transaction.
    """
    waits = bool(getattr(settings, "PATRONAGE_AUDIT_READS_SYNCHRONOUS", False))
    _write(actor, action, library_id, patron_id, patron_label, detail, waits=waits)


@cache
def _converted_fields() -> tuple[Field[Any, Any], Field[Any, Any]]:
    """The two columns whose values the database needs converted (JSON, an address); the others are plain
    text, integers and a timestamp, passed as they are without building a model instance."""
    return AuditEvent._meta.get_field("detail"), AuditEvent._meta.get_field("source_ip")


def _write(
    actor: Actor,
    action: str,
    library_id: int | None,
    patron_id: int | None,
    patron_label: str,
    detail: dict[str, Any],
    *,
    waits: bool,
) -> None:
    connection = connections[router.db_for_write(AuditEvent)]
    detail_field, address_field = _converted_fields()
    account = actor.account
    values = [  # in the order of _COLUMNS
        connection.ops.adapt_datetimefield_value(clock.now()),
        account.pk if account is not None else None,
        actor.label[:150],
        library_id,
        patron_id,
        patron_label[:300],
        action,
        detail_field.get_db_prep_save(detail, connection),
        actor.channel,
        address_field.get_db_prep_save(actor.source_ip, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert(connection, waits=waits or connection.in_atomic_block), values)


def forget_patron(patron_id: int) -> int:
    """Keep a deleted patron's events but drop the personal data they showed."""
    return AuditEvent.objects.filter(patron_id=patron_id).update(patron_label="")
