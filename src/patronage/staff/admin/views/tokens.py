"""My API tokens: every staff member manages their own; the token text is shown once, when it is made."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.api import tokens
from patronage.core import clock
from patronage.core.errors import FieldError, NotFound

from ... import fields
from .. import specs
from .base import AdminView, read_post


class _TokenPage(AdminView):
    """Any signed-in staff member may manage their own tokens; nobody sees another's."""

    permission = None
    section = "tokens"
    tab = "tokens"

    def owner(self) -> User:
        account = self.actor.account
        if account is None:  # StaffView lets only signed-in users through; this informs the type checker
            raise NotFound("Sign in to manage your API tokens.")
        return account

    def time_zone(self) -> str:
        return self.library.time_zone if self.library else "UTC"


class TokenListView(_TokenPage):
    posted: dict[str, str] | None = None

    def _page(self, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200) -> HttpResponse:
        bound = fields.bind(specs.TOKEN, values, errors)
        now = clock.now()
        rows = []
        for token in tokens.tokens_of(self.owner()):
            expired = token.expires_at is not None and token.expires_at <= now
            rows.append(
                {"token": token, "state": "revoked" if token.revoked_at else "expired" if expired else "active"}
            )
        context = self.admin_context("My API tokens") | {
            "rows": rows,
            "fields": bound,
            "errors": fields.error_summary(errors, bound),
            "time_zone": self.time_zone(),
        }
        return render(self.request, "staff/admin/tokens.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page({}, {})


class TokenCreateView(TokenListView):
    http_method_names = ["post"]

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        posted = self.posted
        if posted is None:
            return None
        return lambda errors: self._page(posted, errors, status=400)

    def _expiry(self, text: str) -> dt.datetime | None:
        """A day typed in the library's time zone: the token works until the end of that day."""
        text = text.strip()
        if not text:
            return None
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise FieldError("expires_on", "Enter a date as year-month-day, e.g. 2027-06-30.") from None
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, ZoneInfo(self.time_zone()))

    def post(self, request: HttpRequest) -> HttpResponse:
        self.posted = read_post(request, specs.TOKEN)
        expires_at = self._expiry(self.posted["expires_on"])
        try:
            token, raw = tokens.create_token(
                user=self.owner(), name=self.posted["name"], expires_at=expires_at, actor=self.actor
            )
        except FieldError as exc:
            # The service names the expiry as a moment; the form asks for a day.
            raise FieldError("expires_on" if exc.field == "expires_at" else exc.field, exc.message) from None
        context = self.admin_context("Your new API token") | {"token": token, "raw": raw}
        response = render(request, "staff/admin/token_created.html", context)
        # The token text is in this response only: not cached, not kept in the session.
        response["Cache-Control"] = "no-store"
        return response


class TokenRevokeView(_TokenPage):
    """Asks to confirm, then revokes one of the user's own tokens; another's is not found."""

    def _page(self, token_id: int, *, revoke: bool) -> HttpResponse:
        token = next((t for t in tokens.tokens_of(self.owner()) if t.pk == token_id), None)
        if token is None:
            raise NotFound("You have no such API token.")
        if not revoke:
            context = self.admin_context(f"Revoke API token {token.name}") | {"token": token}
            return render(self.request, "staff/admin/token_revoke.html", context)
        tokens.revoke_token(actor=self.actor, token_id=token.pk, owner=self.owner())
        messages.success(self.request, f"The API token {token.name} is revoked; requests with it are refused now.")
        return HttpResponseRedirect(reverse("staff:admin:tokens"))

    def get(self, request: HttpRequest, token_id: int) -> HttpResponse:
        return self._page(token_id, revoke=False)

    def post(self, request: HttpRequest, token_id: int) -> HttpResponse:
        return self._page(token_id, revoke=request.POST.get("confirm") == "yes")
