"""Session saving to the minute: an unchanged session is written at most once a minute.

Sessions expire after ``SESSION_COOKIE_AGE`` without a request (``SESSION_SAVE_EVERY_REQUEST``), which
Django implements by writing the session row, and resending the cookie, on every response: an ``UPDATE``
of ``django_session`` per page even when nothing in the session changed. ``SessionMiddleware`` here
keeps that rule to the minute instead: a session whose data did not change and that was written less
than ``REFRESH_SECONDS`` ago is left as it is, so its row and cookie expire at most that much earlier
than they would have. A session whose data changed is written at once, as before.

``SessionStore`` (``SESSION_ENGINE = "patronage.core.sessions"``) is Django's database store reading its
row with one hand-written statement.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.contrib.sessions.models import Session
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from patronage.core import clock, rows

# When the session row was last written (epoch seconds), kept in the session itself.
WRITTEN = "_written_at"
REFRESH_SECONDS = 60


def is_fresh(written: object, now: float) -> bool:
    """Whether a session written at ``written`` (epoch seconds) needs no refresh at ``now``."""
    return isinstance(written, int | float) and 0 <= now - written < REFRESH_SECONDS


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, writing an unchanged session at most once every ``REFRESH_SECONDS``."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is None or not settings.SESSION_SAVE_EVERY_REQUEST or session.is_empty():
            return super().process_response(request, response)
        now = clock.now().timestamp()
        if not session.modified and is_fresh(session.get(WRITTEN), now):
            # Written less than a minute ago and unchanged since: nothing to write, nor a cookie to resend.
            patch_vary_headers(response, ("Cookie",))
            return response
        session[WRITTEN] = now
        return super().process_response(request, response)


class SessionStore(DbSessionStore):
    """Django's database session store whose reads are one hand-written statement each.

    Every request with a session cookie loads its row; through the ORM that read cost more in query
    compilation than the statement itself. The statement is the ORM's (the key, not expired) and the rest of
    Django's store (expiry, saving, ``cycle_key`` at sign-in, ``clear_expired``) is inherited unchanged.
    """

    def _get_session_from_db(self) -> AbstractBaseSession | None:
        key = self.session_key
        if key is None:
            return None
        ops = connections[router.db_for_read(self.model)].ops
        _, found = rows.fetch(
            self.model, "session-load", _load_statement, [key, ops.adapt_datetimefield_value(timezone.now())]
        )
        if not found:
            # As Django's: a key without a live row is dropped, so a new one is made when the session is saved.
            self._session_key = None
            return None
        return self.model(session_key=key, session_data=found[0][0])

    def delete(self, session_key: str | None = None) -> None:
        """Django's (a missing row is no error), in one statement instead of a read and a delete: a sign-in and
        a sign-out each drop the old key (``cycle_key``)."""
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        connection = connections[router.db_for_write(self.model)]
        sql = rows.statement(connection, "session-delete", _delete_statement)
        with connection.cursor() as cursor:
            cursor.execute(sql, [session_key])

    def exists(self, session_key: str | None) -> bool:
        return bool(rows.fetch(self.model, "session-exists", _exists_statement, [session_key])[1])


def _load_statement(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {quote('session_data')} FROM {quote(Session._meta.db_table)}"
        f" WHERE {quote('session_key')} = %s AND {quote('expire_date')} > %s"
    )


def _exists_statement(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    return f"SELECT 1 FROM {quote(Session._meta.db_table)} WHERE {quote('session_key')} = %s"


def _delete_statement(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    return f"DELETE FROM {quote(Session._meta.db_table)} WHERE {quote('session_key')} = %s"
