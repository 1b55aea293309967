"""Report a Problem: the patron's own tickets, a new report, and one ticket with its comments.

Tickets are loaded through ``tickets.queries.patron_ticket``, which filters by the signed-in patron:
another patron's ticket is "not found", exactly like one that does not exist. A checkout center can
turn reporting off; then these pages say so and offer no form (tickets reported before stay readable).
The rules live in ``patronage.tickets``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from patronage.core import audit
from patronage.core.errors import FieldError, ValidationFailed
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.tickets import queries, services
from patronage.tickets.models import Ticket
from patronage.tickets.rules import COMMENT_MAX, DESCRIPTION_MAX, SUMMARY_MAX

from . import PortalView, client_ip, error_summary, field


def actor_for(request: HttpRequest, patron: Patron) -> audit.Actor:
    return audit.Actor.patron(patron.pk, client_ip(request))


def off_message(center: Branch) -> str:
    return f"{center.name} does not take problem reports in the portal at the moment. Please ask the staff there."


class _ProblemsView(PortalView):
    def current_center(self) -> Branch | None:
        center = self.center()
        if center is None and len(self.centers()) == 1:
            center = self.centers()[0]
        return center

    def no_center(self) -> HttpResponse:
        return HttpResponseRedirect(self.url("portal:center"))


class ProblemsView(_ProblemsView):
    """The patron's tickets with their status, and the link to report a new one."""

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        center = self.current_center()
        if center is None:
            return self.no_center()
        patron = self.signed_in().patron
        context = {
            "page": "problems",
            "tickets": queries.patron_tickets(patron),
            "enabled": queries.reports_enabled(center),
            "off_message": off_message(center),
        }
        return self.page("portal/problems.html", context)


class ProblemNewView(_ProblemsView):
    """The report form: what it is about (optional, the patron's own only), summary and description."""

    def _fields(self, values: Mapping[str, str], errors: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        return [
            field(
                "summary", "Summary", errors, value=values.get("summary", ""),
                hint=f"A short title of the problem, at most {SUMMARY_MAX} characters, e.g. \"Tripod leg will not lock\".",
            ),
            field(
                "description", "Description", errors, kind="textarea", value=values.get("description", ""),
                hint=f"What happened, where and when; at most {DESCRIPTION_MAX} characters.",
            ),
        ]  # fmt: skip

    def _page(
        self, center: Branch, values: Mapping[str, str], errors: Mapping[str, Sequence[str]], status: int = 200
    ) -> HttpResponse:
        patron = self.signed_in().patron
        fields = self._fields(values, errors)
        about = {
            "id": "f-about",
            "name": "about",
            "value": values.get("about", ""),
            "choices": queries.about_choices(patron, center),
            "errors": list(errors.get("about", [])),
        }
        summary = error_summary(errors, [*fields, about])
        context = {"page": "problems", "fields": fields, "about": about, "errors": summary, "for_center": center}
        return self.page("portal/problem_new.html", context, status)

    def _off(self, center: Branch) -> HttpResponse:
        context = {"page": "problems", "title": "Reporting problems is turned off", "message": off_message(center)}
        return self.page("portal/error.html", context, status=403)

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        center = self.current_center()
        if center is None:
            return self.no_center()
        if not queries.reports_enabled(center):
            return self._off(center)
        return self._page(center, {}, {})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        center = self.current_center()
        if center is None:
            return self.no_center()
        patron = self.signed_in().patron
        values = {name: request.POST.get(name, "") for name in ("summary", "description", "about")}
        try:
            ticket = services.report_problem(
                actor=actor_for(request, patron), patron=patron, center=center, data=values
            )
        except services.ReportsOff:
            return self._off(center)
        except (ValidationFailed, FieldError) as exc:
            return self._page(center, values, exc.errors, status=400)
        messages.success(
            request, f"Thank you. Your report is ticket {ticket.pk}; the staff at {center.name} will look at it."
        )
        return HttpResponseRedirect(self.url("portal:problem", ticket_id=ticket.pk))


class ProblemView(_ProblemsView):
    """One of the patron's tickets: status, what they wrote, the comments, and a form to add one."""

    def _page(self, ticket: Ticket, value: str, errors: Mapping[str, Sequence[str]], status: int = 200) -> HttpResponse:
        comment = field(
            "body", "Add a comment", errors, kind="textarea", value=value,
            hint=f"For the staff working on this ticket; at most {COMMENT_MAX} characters.",
        )  # fmt: skip
        context = {
            "page": "problems",
            "ticket": ticket,
            "comments": queries.comments(ticket, for_patron=True),
            "comment": comment,
            "errors": error_summary(errors, [comment]),
            "enabled": queries.reports_enabled(ticket.center_id),
            "off_message": off_message(ticket.center),
        }
        return self.page("portal/problem.html", context, status)

    def get(self, request: HttpRequest, library: str, ticket_id: int) -> HttpResponse:
        ticket = queries.patron_ticket(self.signed_in().patron, ticket_id)
        return self._page(ticket, "", {})

    def post(self, request: HttpRequest, library: str, ticket_id: int) -> HttpResponse:
        patron = self.signed_in().patron
        ticket = queries.patron_ticket(patron, ticket_id)
        body = request.POST.get("body", "")
        try:
            services.patron_comment(actor=actor_for(request, patron), patron=patron, ticket=ticket, body=body)
        except FieldError as exc:
            return self._page(ticket, body, exc.errors, status=400)
        messages.success(request, "Your comment was added.")
        return HttpResponseRedirect(self.url("portal:problem", ticket_id=ticket.pk))
