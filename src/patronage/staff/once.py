"""One-time form tokens: a creating form sent twice (a double click, Back and Send again, a retried POST)
acts once; the second send goes to what the first one made.

Each form that creates carries ``{% form_token %}`` (``staff_once`` template tags): a hidden field with a
fresh random token, recorded in the staff member's session as unused. A view that takes such a form has
``OnceOnly`` first among its bases and answers success with ``self.done_once(url)``:

- the first POST with a token claims it (unused → in progress) and runs; on success the token remembers
  the page of what was made; on any other answer (field errors, a refusal) it becomes unused again, so
  the corrected form can be sent;
- a later POST with a used token does nothing and redirects to that page with "already done";
- a POST while the first is still running answers "already being handled" and does nothing.

The claim is a read-modify-write of the session row under a row lock (SQLite: the write lock of its
IMMEDIATE transaction), so two requests sent at the same moment cannot both claim one token. A POST
without a token (an old page, a script) runs as before. The session keeps the newest ``KEEP`` tokens.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.views import View

FIELD = "form_token"
SESSION_KEY = "staff_form_tokens"
KEEP = 100
UNUSED = ""
RUNNING = "…"


def _tokens(data: Any) -> dict[str, str]:
    found = data.get(SESSION_KEY) if hasattr(data, "get") else None
    return dict(found) if isinstance(found, dict) else {}


def issue(request: HttpRequest) -> str:
    """A new unused token for a form being rendered."""
    token = secrets.token_urlsafe(18)
    tokens = _tokens(request.session)
    tokens[token] = UNUSED
    request.session[SESSION_KEY] = dict(list(tokens.items())[-KEEP:])
    return token


def _update(request: HttpRequest, change: Callable[[dict[str, str]], str | None]) -> str | None:
    """Apply ``change`` to the tokens as stored now, under a lock on the session row; keep the result in
    the request's session too (which the session middleware saves at the end)."""
    session = request.session
    key = session.session_key
    with transaction.atomic():
        row = Session.objects.select_for_update().filter(session_key=key).first() if key else None
        stored = session.decode(row.session_data) if row is not None else dict(session.items())
        tokens = _tokens(stored)
        result = change(tokens)
        stored[SESSION_KEY] = tokens
        if row is not None:
            row.session_data = session.encode(stored)
            row.save(update_fields=["session_data"])
    session[SESSION_KEY] = tokens
    return result


def claim(request: HttpRequest, token: str) -> str | None:
    """``None`` to go ahead (the token is now in progress, or unknown); otherwise the token's state:
    the page of what was made, or ``RUNNING``."""

    def change(tokens: dict[str, str]) -> str | None:
        if token not in tokens:
            return None
        if tokens[token] == UNUSED:
            tokens[token] = RUNNING
            return None
        return tokens[token]

    return _update(request, change)


def finish(request: HttpRequest, token: str, url: str) -> None:
    def change(tokens: dict[str, str]) -> None:
        tokens[token] = url

    _update(request, change)


def release(request: HttpRequest, token: str) -> None:
    def change(tokens: dict[str, str]) -> None:
        if tokens.get(token) == RUNNING:
            tokens[token] = UNUSED

    _update(request, change)


class OnceOnly(View):
    """Put first among a view's bases; answer success with ``self.done_once(url)``."""

    once_token: str = ""
    once_done: bool = False
    already_done_message = "This form was already sent and done; here is what it made. Nothing was done twice."

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        token = request.POST.get(FIELD, "") if request.method == "POST" else ""
        if not token or not request.user.is_authenticated:
            return super().dispatch(request, *args, **kwargs)
        earlier = claim(request, token)
        if earlier == RUNNING:
            messages.warning(request, "This form was already sent and is still being handled; nothing was done twice.")
            back = self.back_url() if hasattr(self, "back_url") else None
            return HttpResponseRedirect(back or request.get_full_path())
        if earlier:
            messages.info(request, self.already_done_message)
            return HttpResponseRedirect(earlier)
        if token not in _tokens(request.session):
            return super().dispatch(request, *args, **kwargs)
        self.once_token = token
        try:
            response = super().dispatch(request, *args, **kwargs)
        finally:
            if not self.once_done:
                release(request, token)
        return response

    def done_once(self, url: str) -> HttpResponseRedirect:
        """The redirect after success; a second send of the same form comes here too."""
        if self.once_token:
            finish(self.request, self.once_token, url)
            self.once_done = True
        return HttpResponseRedirect(url)
