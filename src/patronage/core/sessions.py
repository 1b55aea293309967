"""Session saving to the minute: an unchanged session is written at most once a minute.

Sessions expire after ``SESSION_COOKIE_AGE`` without a request (``SESSION_SAVE_EVERY_REQUEST``), which
Django implements by writing the session row, and resending the cookie, on every response: an ``UPDATE``
of ``django_session`` per page even when nothing in the session changed. ``SessionMiddleware`` here
keeps that rule to the minute instead: a session whose data did not change and that was written less
than ``REFRESH_SECONDS`` ago is left as it is, so its row and cookie expire at most that much earlier
than they would have. A session whose data changed is written at once, as before.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from patronage.core import clock

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
