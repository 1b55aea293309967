"""The patron's portal session: kept apart from staff sign-in, checked again on every request.

A patron is not a Django user. The session holds the patron's id under its own keys, the library it
was opened at, a stamp of the password it was opened with, the chosen checkout center and the time
of the last request (to the minute). ``current`` ends the portal session when the patron has been idle too long,
when their password changed since, or when standing no longer lets them sign in.
"""

from __future__ import annotations

from enum import StrEnum

from django.http import HttpRequest

from patronage.core import clock
from patronage.credentials import services as credentials
from patronage.libraries.models import Library
from patronage.patrons.models import Patron

PATRON = "portal_patron_id"
LIBRARY = "portal_library_id"
STAMP = "portal_stamp"
CENTER = "portal_center_id"
SEEN = "portal_seen"
KEYS = (PATRON, LIBRARY, STAMP, CENTER, SEEN)
# The "last seen" time is rewritten only once it is this old, so the idle limit counts from the last
# request to the minute: a session may end up to this much before the limit is reached.
SEEN_PRECISION_SECONDS = 60


class Ended(StrEnum):
    NONE = ""
    IDLE = "idle"
    REVOKED = "revoked"


def start(request: HttpRequest, patron: Patron) -> None:
    # A new session key at sign-in: a key planted before sign-in (session fixation) is worth nothing. One
    # new key, also when another patron was signed in (``end`` would make one more).
    for key in KEYS:
        request.session.pop(key, None)
    request.session.cycle_key()
    request.session[PATRON] = patron.pk
    request.session[LIBRARY] = patron.library_id
    request.session[STAMP] = credentials.session_stamp(patron)
    request.session[SEEN] = clock.now().timestamp()


def end(request: HttpRequest) -> None:
    """Forget the patron; a staff sign-in in the same browser is left alone."""
    had = any(key in request.session for key in KEYS)
    for key in KEYS:
        request.session.pop(key, None)
    if had:
        request.session.cycle_key()


def current(request: HttpRequest, library: Library) -> tuple[credentials.PortalSession | None, Ended]:
    """The signed-in patron at ``library``, or None and why the session ended (if it did)."""
    if PATRON not in request.session:
        return None, Ended.NONE
    if request.session.get(LIBRARY) != library.pk:
        # Signed in at another library of this installation: that session says nothing here.
        return None, Ended.NONE
    seen = request.session.get(SEEN)
    now = clock.now().timestamp()
    if not isinstance(seen, int | float) or now - seen > credentials.idle_minutes() * 60:
        end(request)
        return None, Ended.IDLE
    found = credentials.portal_session(request.session.get(PATRON), library.pk, request.session.get(STAMP))
    if found is None:
        end(request)
        return None, Ended.REVOKED
    if now - seen >= SEEN_PRECISION_SECONDS:
        # "Last seen" to the minute: a patron clicking through pages does not rewrite the session each time.
        request.session[SEEN] = now
    return found, Ended.NONE
