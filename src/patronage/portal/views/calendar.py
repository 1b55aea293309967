"""Email Calendar: the patron's own calendar feed address, and the feed a calendar program reads.

The management page (``portal:calendar``) makes, shows, e-mails, replaces and stops the address; the
feed itself (``portal:feed``, ``/portal/feed/<token>.ics``) needs no session: the long random token in
the address is the key, never the session cookie. A stopped or replaced address answers 404, and so
does every address while no checkout center of the library offers the feed. The rules and the
iCalendar writing live in ``patronage.feeds``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views import View

from patronage.core import audit
from patronage.feeds import services as feeds
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron

from . import PortalView, client_ip


def actor_for(request: HttpRequest, patron: Patron) -> audit.Actor:
    return audit.Actor.patron(patron.pk, client_ip(request))


def off_message(center: Branch) -> str:
    return f"{center.name} does not offer the calendar feed at the moment."


class _CalendarView(PortalView):
    def current_center(self) -> Branch | None:
        center = self.center()
        if center is None and len(self.centers()) == 1:
            center = self.centers()[0]
        return center

    def feed_url(self, token: str) -> str:
        return self.request.build_absolute_uri(reverse("portal:feed", kwargs={"token": token}))

    def enabled(self) -> bool:
        center = self.current_center()
        return center is not None and feeds.enabled_at(center)

    def back(self) -> HttpResponse:
        return HttpResponseRedirect(self.url("portal:calendar"))


class CalendarView(_CalendarView):
    """The patron's feed address, with buttons to make, e-mail, replace or stop it."""

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        center = self.current_center()
        if center is None:
            return HttpResponseRedirect(self.url("portal:center"))
        patron = self.signed_in().patron
        feed = feeds.live_feed(patron)
        url = self.feed_url(feeds.token_of(feed)) if feed else ""
        context: dict[str, Any] = {
            "page": "calendar",
            "enabled": feeds.enabled_at(center),
            "off_message": off_message(center),
            "feed": feed,
            "feed_url": url,
            "webcal_url": url.replace("https://", "webcal://", 1).replace("http://", "webcal://", 1),
            "has_email": bool(patron.primary_email),
            "cancelled_days": feeds.cancelled_days(),
        }
        return self.page("portal/calendar.html", context)


class CalendarIssueView(_CalendarView):
    """Make the address, or a new one in place of the old (which stops working at once)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        if not self.enabled():
            messages.error(request, "The calendar feed is not offered here at the moment.")
            return self.back()
        patron = self.signed_in().patron
        had = feeds.live_feed(patron) is not None
        feeds.issue(actor=actor_for(request, patron), patron=patron)
        messages.success(
            request,
            "Your new calendar address is below. The old one no longer works: update your calendar program."
            if had
            else "Your calendar address is below. Add it to your calendar program as a subscription.",
        )
        return self.back()


class CalendarRevokeView(_CalendarView):
    """Stop the feed: the address answers "not found" from now on. Allowed even where the feed is off."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        patron = self.signed_in().patron
        if feeds.revoke(actor=actor_for(request, patron), patron=patron):
            messages.success(request, "Your calendar feed is stopped; its address no longer works.")
        return self.back()


class CalendarEmailView(_CalendarView):
    """E-mail the address to the patron (made first if there is none yet)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        if not self.enabled():
            messages.error(request, "The calendar feed is not offered here at the moment.")
            return self.back()
        patron = self.signed_in().patron
        actor = actor_for(request, patron)
        if not patron.primary_email:
            messages.error(
                request, "Your account has no e-mail address. Copy the address from this page, or ask the library."
            )
            return self.back()
        feed = feeds.live_feed(patron)
        token = feeds.token_of(feed) if feed else feeds.issue(actor=actor, patron=patron)[1]
        feeds.email_address(actor=actor, patron=patron, url=self.feed_url(token))
        messages.success(request, f"We are sending the address to {patron.primary_email}.")
        return self.back()


class FeedView(View):
    """The feed a calendar program fetches. No session, no cookies; 404 for any address not live."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        feed = feeds.feed_for_token(token)
        if feed is None:
            raise Http404("No such calendar.")
        body = feeds.calendar_bytes(feed)
        if body is None:
            raise Http404("No such calendar.")
        response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="calendar.ics"'
        response["Cache-Control"] = "private, max-age=300"
        response["X-Robots-Tag"] = "noindex"
        response["Referrer-Policy"] = "no-referrer"
        return response
