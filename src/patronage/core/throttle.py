"""Lock-out of repeated failed credential checks, shared by every place a password is checked.

Two counters are kept per check: one for the account and one for the client address, so that
guessing many passwords for one account and one password for many accounts are both slowed.
After ``LOGIN_FAILURE_LIMIT`` failures inside the window the key is locked for the cool-off.
The counters live in the database, so they hold across processes and machines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction

from . import clock
from .models import CredentialFailures


@dataclass(frozen=True)
class Lock:
    key: str
    until: dt.datetime

    @property
    def retry_after_seconds(self) -> int:
        return max(1, int((self.until - clock.now()).total_seconds()))


def _limit_for(key: str) -> int:
    if key.startswith("ip:"):
        return int(settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS)
    if key.startswith("client:"):
        return int(settings.LOGIN_FAILURE_LIMIT_PER_CLIENT)
    return int(settings.LOGIN_FAILURE_LIMIT)


def client_key(login: str) -> str:
    """The counter of the patrons' failed PINs that came through one protocol client (see ``_limit_for``)."""
    return f"client:{login.strip().lower()}"


def keys_for(account: str, address: str | None) -> list[str]:
    keys = [f"account:{account.strip().lower()}"]
    if address:
        keys.append(f"ip:{address}")
    return keys


def current_lock(scope: str, keys: list[str]) -> Lock | None:
    """The lock that stands against any of ``keys`` now, if any (the longest)."""
    return lock_and_counted(scope, keys)[0]


def record_failure(scope: str, keys: list[str]) -> Lock | None:
    """Count one failure against every key; return the lock if this failure caused one."""
    now = clock.now()
    window = dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    lock: Lock | None = None
    for key in keys:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    CredentialFailures.objects.get_or_create(scope=scope, key=key, defaults={"window_started_at": now})
            except IntegrityError:
                pass  # another process created the row first; fine
            row = CredentialFailures.objects.select_for_update().get(scope=scope, key=key)
            if row.window_started_at + window < now or (row.locked_until and row.locked_until <= now):
                row.failures = 0
                row.window_started_at = now
                row.locked_until = None
            row.failures += 1
            if row.failures >= _limit_for(key):
                row.locked_until = now + dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
                lock = Lock(key=key, until=row.locked_until)
            row.save()
    return lock


def record_success(scope: str, account: str) -> None:
    CredentialFailures.objects.filter(scope=scope, key=keys_for(account, None)[0]).delete()


def clear(scope: str, account: str) -> int:
    """Staff lift a lock: the account's counter starts again from zero."""
    deleted, _ = CredentialFailures.objects.filter(scope=scope, key=keys_for(account, None)[0]).delete()
    return deleted


def lock_and_counted(scope: str, keys: list[str]) -> tuple[Lock | None, set[str]]:
    """``current_lock`` and, in the same read, which of ``keys`` have failures counted: a caller whose check
    succeeded needs ``record_success`` (a write) only for a key that has some (protocol clients sign in on
    every request)."""
    if not keys:
        return None, set()
    now = clock.now()
    connection = connections[router.db_for_read(CredentialFailures)]
    quote = connection.ops.quote_name
    field = CredentialFailures._meta.get_field("locked_until")
    sql = (
        f"SELECT {quote('key')}, {quote('locked_until')} FROM {quote(CredentialFailures._meta.db_table)}"
        f" WHERE {quote('scope')} = %s AND {quote('key')} IN ({', '.join(['%s'] * len(keys))})"
    )
    with connection.cursor() as cursor:  # by hand: signing a protocol client in runs this on every request
        cursor.execute(sql, [scope, *keys])
        found = cursor.fetchall()
    col = field.get_col(CredentialFailures._meta.db_table)
    converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
    counted: set[str] = set()
    lock: Lock | None = None
    for key, raw in found:
        locked_until = raw
        for convert in converters:
            locked_until = convert(locked_until, col, connection)
        counted.add(key)
        if locked_until is not None and locked_until > now and (lock is None or locked_until > lock.until):
            lock = Lock(key=key, until=locked_until)
    return lock, counted
