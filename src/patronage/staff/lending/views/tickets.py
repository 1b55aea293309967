"""The tickets pages: a library's reported problems by center, state and assignee, and one ticket with its
comments, where staff assign it, comment and move it (in progress, closed, reopened). Every rule is in
``tickets.services``; tickets are loaded filtered by the current library, so another library's ticket is
"not found", exactly like a missing one. Working tickets needs the desk permission (check out and in)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import NotFound
from patronage.tickets import queries, services
from patronage.tickets.models import Ticket
from patronage.tickets.rules import COMMENT_MAX, TRANSITIONS, State

from .base import DESK, LendingView

PAGE = 50
# The buttons that move a ticket: target state -> label.
MOVES = {State.IN_PROGRESS: "Start work", State.CLOSED: "Close", State.OPEN: "Reopen"}


def _int(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


class _TicketsView(LendingView):
    permission = DESK
    tab = "tickets"

    def ticket(self, ticket_id: object) -> Ticket:
        key = _int(ticket_id)
        found = (
            Ticket.objects.filter(library_id=self.library_id, pk=key)
            .select_related("center", "reporter", "assignee", "resource", "reservation", "checkout")
            .first()
            if key is not None
            else None
        )
        if found is None:
            raise NotFound("There is no such ticket here.")
        return found


class TicketListView(_TicketsView):
    """Tickets of the current library, filtered by center, state and assignee; open ones by default."""

    def get(self, request: HttpRequest) -> HttpResponse:
        self.enter()
        centers = self.centers()
        staff = queries.assignable_staff(self.library_id)
        center = _int(request.GET.get("center"))
        state = request.GET.get("state", "active")
        who = request.GET.get("assignee", "")
        errors: list[str] = []
        if center is not None and center not in {c.pk for c in centers}:
            errors.append("Choose one of this library's checkout centers.")
            center = None
        states = {s.value for s in State}
        if state not in states | {"active", "all"}:
            errors.append("Choose a state from the list.")
            state = "active"
        rows = queries.staff_tickets(
            [self.library_id], center=center, state=state if state in states else None,
            assignee=self.request.user.pk if who == "me" else _int(who) if who not in ("", "none") else None,
            unassigned=who == "none",
        )  # fmt: skip
        if state == "active":
            rows = rows.exclude(state=State.CLOSED)
        page = Paginator(rows, PAGE).get_page(request.GET.get("page"))
        context = self.admin_context("Tickets") | {
            "page": page,
            "tickets": list(page),
            "centers": centers,
            "staff": staff,
            "states": [(s.value, s.label) for s in State],
            "chosen": {"center": str(center or ""), "state": state, "assignee": who},
            "filter_errors": errors,
            "open_counts": [(c, queries.open_counts(self.library_id).get(c.pk, 0)) for c in centers],
        }
        return render(request, "staff/lending/tickets.html", context, status=400 if errors else 200)


class TicketView(_TicketsView):
    """One ticket: what the patron reported, its history, and the forms to assign, move and comment."""

    def render_ticket(
        self,
        ticket: Ticket,
        errors: dict[str, list[str]] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        errors = errors or {}
        values = values or {}
        summary = [
            {"href": f"#f-{name}", "label": {"body": "Comment", "assignee": "Assigned to", "state": "Status"}.get(name, name),
             "message": message}
            for name, texts in errors.items()
            for message in texts
        ]  # fmt: skip
        moves = [(s.value, MOVES[s]) for s in State if s in TRANSITIONS[State(ticket.state)]]
        context = self.admin_context(f"Ticket {ticket.pk}") | {
            "t": ticket,
            "comments": queries.comments(ticket),
            "staff": queries.assignable_staff(self.library_id),
            "moves": moves,
            "errors": summary,
            "field_errors": errors,
            "values": values,
            "comment_max": COMMENT_MAX,
            "zone": self.zone().key,
        }
        return render(self.request, "staff/lending/ticket.html", context, status=status)

    def get(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        self.enter()
        found = self.ticket(ticket_id)
        services.record_staff_read(actor=self.actor, ticket=found)
        return self.render_ticket(found)


class TicketActionView(TicketView):
    """The POST targets of the ticket page: ``action`` is "assign", "state" or "comment"."""

    http_method_names = ["post"]
    action = ""
    loaded: Ticket | None = None
    values: dict[str, str] | None = None

    def back_url(self) -> str | None:
        return reverse("staff:lending:ticket", kwargs={"ticket_id": self.kwargs.get("ticket_id", 0)})

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        loaded, values = self.loaded, self.values
        if loaded is None:
            return None
        return lambda errors: self.render_ticket(loaded, dict(errors), values, status=400)

    def post(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        self.enter()
        ticket = self.loaded = self.ticket(ticket_id)
        values = self.values = {name: request.POST.get(name, "") for name in ("assignee", "state", "body", "comment")}
        if self.action == "assign":
            services.assign(actor=self.actor, ticket=ticket, assignee=values["assignee"])
            messages.success(request, "The assignment is saved.")
        elif self.action == "state":
            moved = services.set_state(
                actor=self.actor, ticket=ticket, state=values["state"], comment=values["comment"]
            )
            messages.success(request, f"The ticket is now {moved.state_label.lower()}.")
        else:
            services.staff_comment(actor=self.actor, ticket=ticket, body=values["body"])
            messages.success(request, "Your comment was added; the patron sees it in the portal.")
        return HttpResponseRedirect(reverse("staff:lending:ticket", kwargs={"ticket_id": ticket.pk}))
