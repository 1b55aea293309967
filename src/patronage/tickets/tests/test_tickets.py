"""Report a Problem end to end: the patron reports in the portal, staff work the ticket on the staff pages and
the API, the patron sees the status; the center's switch; validation; isolation; privacy."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from patronage.api.tokens import create_token
from patronage.core.models import AuditEvent
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.privacy import export
from patronage.privacy import services as privacy
from patronage.reservations.models import CenterPolicy
from patronage.resources.models import Resource
from patronage.tickets import rules, services
from patronage.tickets.models import Ticket, TicketComment
from tests.factories import SYSTEM, make_branch, make_library, make_staff
from tests.lending_portal import book, new_patron

pytestmark = pytest.mark.django_db


def report(client: Client, **data: str) -> Any:
    values = {"summary": "Tripod leg will not lock", "description": "The left leg slides down.", **data}
    return client.post("/portal/north/problems/new/", values)


def staff_client(library: Library, *permissions: Permission, username: str = "desk") -> Client:
    client = Client()
    client.force_login(make_staff(library, permissions or [Permission.CHECK_OUT], username=username))
    return client


# --- rules without a database -----------------------------------------------------------------------------------


def test_a_closed_ticket_can_only_be_reopened() -> None:
    assert rules.may_move(rules.State.CLOSED, rules.State.OPEN)
    assert not rules.may_move(rules.State.CLOSED, rules.State.IN_PROGRESS)
    assert rules.may_move(rules.State.OPEN, rules.State.CLOSED)
    assert rules.may_move(rules.State.CLOSED, rules.State.CLOSED)


def test_summary_and_description_are_required_and_limited() -> None:
    _, errors = rules.clean_report("  ", "")
    assert set(errors) == {"summary", "description"}
    _, errors = rules.clean_report("x" * (rules.SUMMARY_MAX + 1), "fine")
    assert "shorten it to at most 120" in errors["summary"][0]


# --- the whole journey --------------------------------------------------------------------------------------------


def test_patron_reports_staff_assign_comment_close_and_patron_sees_it(
    portal: Client, patron: Patron, library: Library, center: Branch, camera: Resource
) -> None:
    reservation = book(patron, center, camera)
    page = portal.get("/portal/north/problems/new/").content.decode()
    assert f'value="reservation-{reservation.pk}"' in page
    response = report(portal, about=f"reservation-{reservation.pk}")
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert response["Location"] == f"/portal/north/problems/{ticket.pk}/"
    assert (ticket.reporter, ticket.center, ticket.reservation, ticket.state) == (patron, center, reservation, "open")
    assert AuditEvent.objects.filter(action="ticket.reported", patron_id=patron.pk).exists()
    listing = portal.get("/portal/north/problems/").content.decode()
    assert "Tripod leg will not lock" in listing
    assert 'data-state="open">Open' in listing

    desk = staff_client(library, username="alice")
    assert "Tripod leg will not lock" in desk.get("/staff/lending/tickets/").content.decode()
    alice = desk.get("/staff/lending/tickets/").wsgi_request.user
    assert desk.post(f"/staff/lending/tickets/{ticket.pk}/assign/", {"assignee": alice.pk}).status_code == 302
    assert desk.post(f"/staff/lending/tickets/{ticket.pk}/state/", {"state": "in_progress"}).status_code == 302
    desk.post(f"/staff/lending/tickets/{ticket.pk}/comment/", {"body": "A new tripod is at the desk for you."})
    desk.post(f"/staff/lending/tickets/{ticket.pk}/state/", {"state": "closed", "comment": "Leg replaced."})
    ticket.refresh_from_db()
    assert (ticket.state, ticket.assignee) == ("closed", alice)
    assert ticket.closed_at is not None

    mine = portal.get(f"/portal/north/problems/{ticket.pk}/").content.decode()
    assert "<strong>Closed</strong>" in mine
    assert "A new tripod is at the desk for you." in mine
    assert "Leg replaced." in mine
    assert "alice" not in mine  # the patron sees "Staff", not who
    portal.post(f"/portal/north/problems/{ticket.pk}/", {"body": "Thanks, it works."})
    staff_page = desk.get(f"/staff/lending/tickets/{ticket.pk}/").content.decode()
    assert "Thanks, it works." in staff_page
    # Reopen, then a closed ticket cannot go straight to in progress.
    desk.post(f"/staff/lending/tickets/{ticket.pk}/state/", {"state": "open"})
    assert Ticket.objects.get().state == "open"
    desk.post(f"/staff/lending/tickets/{ticket.pk}/state/", {"state": "closed"})
    refused = desk.post(f"/staff/lending/tickets/{ticket.pk}/state/", {"state": "in_progress"}, follow=True)
    assert "cannot become in progress" in refused.content.decode()
    assert Ticket.objects.get().state == "closed"


def test_report_form_names_every_missing_field_and_writes_nothing(portal: Client) -> None:
    response = report(portal, summary="", description="  ")
    assert response.status_code == 400
    page = response.content.decode()
    assert 'href="#f-summary"' in page
    assert 'href="#f-description"' in page
    assert "Enter the summary" in page
    assert "Enter the description" in page
    assert page.count('aria-invalid="true"') == 2
    too_long = report(portal, description="x" * 4001)
    assert "shorten it to at most 4000" in too_long.content.decode()
    assert not Ticket.objects.exists()


def test_a_report_about_someone_elses_reservation_is_refused(
    portal: Client, library: Library, center: Branch, camera: Resource
) -> None:
    other = new_patron(library, "P-2002", "Alan", "Turing")
    theirs = book(other, center, camera)
    response = report(portal, about=f"reservation-{theirs.pk}")
    assert response.status_code == 400
    assert "Choose one of your own reservations" in response.content.decode()
    assert not Ticket.objects.exists()


def test_double_submit_makes_one_ticket(portal: Client) -> None:
    report(portal)
    report(portal)
    assert Ticket.objects.count() == 1


def test_another_patrons_ticket_is_not_found(portal: Client, library: Library, center: Branch) -> None:
    other = new_patron(library, "P-2002", "Alan", "Turing")
    theirs = services.report_problem(
        actor=SYSTEM, patron=other, center=center, data={"summary": "Alan's secret", "description": "x"}
    )
    response = portal.get(f"/portal/north/problems/{theirs.pk}/")
    assert response.status_code == 404
    assert "Alan's secret" not in response.content.decode()
    assert portal.post(f"/portal/north/problems/{theirs.pk}/", {"body": "hi"}).status_code == 404
    assert "Alan's secret" not in portal.get("/portal/north/problems/").content.decode()
    assert not TicketComment.objects.exists()


def test_the_center_can_turn_reporting_off(portal: Client, patron: Patron, center: Branch) -> None:
    made = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "a", "description": "b"}
    )
    CenterPolicy.objects.filter(center=center).update(problem_reports_enabled=False)
    listing = portal.get("/portal/north/problems/").content.decode()
    assert "does not take problem reports in the portal" in listing
    assert "Report a new problem" not in listing
    assert made.summary in listing  # what was reported before stays readable
    assert portal.get("/portal/north/problems/new/").status_code == 403
    assert report(portal).status_code == 403
    assert portal.post(f"/portal/north/problems/{made.pk}/", {"body": "more"}).status_code == 403
    assert Ticket.objects.count() == 1
    assert not TicketComment.objects.exists()


def test_staff_comment_needs_text_and_says_so(library: Library, patron: Patron, center: Branch) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "a", "description": "b"}
    )
    desk = staff_client(library)
    response = desk.post(f"/staff/lending/tickets/{ticket.pk}/comment/", {"body": " "})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'href="#f-body"' in page
    assert "Enter the comment." in page
    assert not TicketComment.objects.exists()


def test_staff_without_the_desk_permission_cannot_work_tickets(
    library: Library, patron: Patron, center: Branch
) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "a", "description": "b"}
    )
    viewer = staff_client(library, Permission.VIEW_PATRONS, username="viewer")
    assert viewer.get("/staff/lending/tickets/").status_code == 403
    assert viewer.post(f"/staff/lending/tickets/{ticket.pk}/state/", {"state": "closed"}).status_code == 403
    assert Ticket.objects.get().state == "open"


def test_another_librarys_ticket_is_not_found_on_staff_pages_and_api(patron: Patron, center: Branch) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "North's secret", "description": "b"}
    )
    south = make_library("south")
    make_branch(south, "lab", is_checkout_center=True)
    south_desk = make_staff(south, list(Permission), username="south-desk")
    other = Client()
    other.force_login(south_desk)
    assert other.get(f"/staff/lending/tickets/{ticket.pk}/").status_code == 404
    assert other.post(f"/staff/lending/tickets/{ticket.pk}/state/", {"state": "closed"}).status_code == 404
    assert "North's secret" not in other.get("/staff/lending/tickets/").content.decode()
    token = create_token(user=south_desk, name="t", expires_at=None)[1]
    auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert Client().get(f"/api/v1/tickets/{ticket.pk}/", **auth).status_code == 404
    assert Client().get("/api/v1/tickets/", **auth).json()["count"] == 0
    assert Ticket.objects.get().state == "open"


def test_api_lists_reads_updates_and_comments(library: Library, patron: Patron, center: Branch) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "a", "description": "b"}
    )
    user = make_staff(library, [Permission.CHECK_OUT], username="api-desk")
    auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {create_token(user=user, name='t', expires_at=None)[1]}"}
    api = Client()
    listed = api.get("/api/v1/tickets/?state=open", **auth).json()
    assert [t["id"] for t in listed["results"]] == [ticket.pk]
    bad = api.get("/api/v1/tickets/?state=done", **auth)
    assert bad.status_code == 400
    assert bad["Content-Type"].startswith("application/problem+json")
    body = {"state": "in_progress", "assignee": user.pk, "comment": "Looking at it."}
    updated = api.patch(f"/api/v1/tickets/{ticket.pk}/", body, content_type="application/json", **auth)
    assert updated.status_code == 200, updated.content
    data = updated.json()
    assert (data["state"], data["assignee"], data["assignee_username"]) == ("in_progress", user.pk, "api-desk")
    assert [c["body"] for c in data["comments"] if c["body"]] == ["Looking at it."]
    again = api.patch(
        f"/api/v1/tickets/{ticket.pk}/", {"state": "in_progress"}, content_type="application/json", **auth
    )
    assert again.status_code == 200
    assert TicketComment.objects.filter(change__startswith="Status").count() == 1  # a retry changes nothing
    wrong = api.patch(f"/api/v1/tickets/{ticket.pk}/", {"assignee": 999999}, content_type="application/json", **auth)
    assert wrong.status_code == 400
    assert "assignee" in str(wrong.json())
    made = api.post(
        f"/api/v1/tickets/{ticket.pk}/comments/", {"body": "Fixed."}, content_type="application/json", **auth
    )
    assert made.status_code == 201
    assert made.json()["author"] == "api-desk"
    empty = api.post(f"/api/v1/tickets/{ticket.pk}/comments/", {"body": ""}, content_type="application/json", **auth)
    assert empty.status_code == 400
    assert "body" in str(empty.json())
    api.patch(f"/api/v1/tickets/{ticket.pk}/", {"state": "closed"}, content_type="application/json", **auth)
    conflict = api.patch(
        f"/api/v1/tickets/{ticket.pk}/", {"state": "in_progress"}, content_type="application/json", **auth
    )
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "transition_not_allowed"


def test_export_holds_tickets_and_the_patrons_comments(patron: Patron, center: Branch) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "Lamp", "description": "Flickers"}
    )
    services.patron_comment(actor=SYSTEM, patron=patron, ticket=ticket, body="Still flickers")
    data = export.patron_data(patron)
    text = str(data)
    assert "Flickers" in text
    assert "Still flickers" in text


def test_deletion_keeps_open_tickets_without_the_patrons_words(
    library: Library, patron: Patron, center: Branch
) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "Grace's lamp", "description": "At my desk"}
    )
    services.patron_comment(actor=SYSTEM, patron=patron, ticket=ticket, body="Call me on 555-0100")
    services.staff_comment(actor=SYSTEM, ticket=ticket, body="Bulb ordered.")
    assert not privacy.deletion_obstacles(patron)  # an open ticket does not stop the deletion
    privacy.delete_patron(actor=SYSTEM, patron=patron)
    kept = Ticket.objects.get(pk=ticket.pk)
    assert kept.reporter is None
    assert kept.state == "open"
    everything = str(list(Ticket.objects.values())) + str(list(TicketComment.objects.values()))
    assert "Grace" not in everything
    assert "555-0100" not in everything
    assert "At my desk" not in everything
    assert "Bulb ordered." in everything
    desk = staff_client(library)
    assert "A patron whose account was deleted" in desk.get(f"/staff/lending/tickets/{ticket.pk}/").content.decode()


def test_html_in_a_report_is_shown_as_text(portal: Client, library: Library) -> None:
    report(portal, summary="<script>alert(1)</script>", description="<b>bold</b>")
    ticket = Ticket.objects.get()
    for page in (
        portal.get(f"/portal/north/problems/{ticket.pk}/").content.decode(),
        staff_client(library).get(f"/staff/lending/tickets/{ticket.pk}/").content.decode(),
    ):
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;" in page
        assert "<b>bold</b>" not in page


def test_csrf_is_required_on_the_report_form(patron: Patron) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/portal/north/sign-in/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    client.post("/portal/north/sign-in/", {"identifier": "P-1001", "password": "plum-orchard-41-lantern",
                                           "csrfmiddlewaretoken": token.group(1)})  # fmt: skip
    client.get("/portal/north/center/")
    refused = client.post("/portal/north/problems/new/", {"summary": "a", "description": "b"})
    assert refused.status_code == 403
    assert not Ticket.objects.exists()


def test_staff_reading_a_ticket_is_audited_as_a_read_of_the_reporter(
    library: Library, patron: Patron, center: Branch
) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "Lens cap lost", "description": "At home."}
    )
    reads = AuditEvent.objects.filter(action="patron.read", patron_id=patron.pk, detail__purpose="ticket")
    desk = staff_client(library, username="carol")
    assert "Lens cap lost" in desk.get("/staff/lending/tickets/").content.decode()
    assert not reads.exists()  # the list shows summaries, not the patron's record
    assert "At home." in desk.get(f"/staff/lending/tickets/{ticket.pk}/").content.decode()
    page_read = reads.get()
    assert (page_read.actor_label, page_read.channel, page_read.detail["ticket_id"]) == ("carol", "staff", ticket.pk)
    assert page_read.patron_label == patron.display_name

    user = make_staff(library, [Permission.CHECK_OUT], username="api-reader")
    token = create_token(user=user, name="t", expires_at=None)[1]
    assert Client().get(f"/api/v1/tickets/{ticket.pk}/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert list(reads.order_by("pk").values_list("actor_label", "channel")) == [
        ("carol", "staff"),
        ("api-reader", "api"),
    ]


def test_a_ticket_whose_reporter_was_deleted_is_read_without_a_patron_read(
    library: Library, patron: Patron, center: Branch
) -> None:
    ticket = services.report_problem(
        actor=SYSTEM, patron=patron, center=center, data={"summary": "a", "description": "b"}
    )
    services.forget_reporter(actor=SYSTEM, patron=patron)
    page = staff_client(library).get(f"/staff/lending/tickets/{ticket.pk}/")
    assert page.status_code == 200
    assert not AuditEvent.objects.filter(action="patron.read").exists()
