"""The REST API for tickets (problems patrons reported in the portal): list, read, update (state, assignee)
and comment. Tickets are loaded through ``resources.access.for_staff`` (another library's ticket is 404, a
member without the desk permission 403) and every change goes through ``tickets.services``, as on the
staff ticket pages. Patrons report tickets in the portal only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patronage.core.errors import FieldError
from patronage.resources.access import for_staff
from patronage.tickets import services
from patronage.tickets.models import Ticket, TicketComment
from patronage.tickets.queries import WORK, staff_tickets
from patronage.tickets.rules import COMMENT_MAX, State

from .idempotency import idempotent
from .views import COMMON_ERRORS, _body, _int, _one_of, _scope, actor_of, paged

# --- shapes ------------------------------------------------------------------------------------------------


class TicketCommentSerializer(serializers.ModelSerializer[TicketComment]):
    author = serializers.SerializerMethodField(help_text='"patron", or the staff member\'s user name.')

    class Meta:
        model = TicketComment
        fields = ["id", "author", "body", "change", "created_at"]

    def get_author(self, comment: TicketComment) -> str:
        return "patron" if comment.by_patron else comment.staff_label


class TicketSerializer(serializers.ModelSerializer[Ticket]):
    assignee = serializers.SerializerMethodField(help_text="The staff user's id, or null.")
    assignee_username = serializers.SerializerMethodField()
    reporter = serializers.IntegerField(
        source="reporter_id", allow_null=True, help_text="The patron's id; null once the account was deleted."
    )

    class Meta:
        model = Ticket
        fields = [
            "id", "library", "center", "reporter", "resource", "reservation", "checkout", "summary", "description",
            "state", "assignee", "assignee_username", "created_at", "updated_at", "closed_at",
        ]  # fmt: skip

    def get_assignee(self, ticket: Ticket) -> int | None:
        return ticket.assignee_id

    def get_assignee_username(self, ticket: Ticket) -> str | None:
        return ticket.assignee.get_username() if ticket.assignee else None


class TicketDetailSerializer(TicketSerializer):
    comments = TicketCommentSerializer(many=True, read_only=True)

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "comments"]


class TicketUpdateSerializer(serializers.Serializer[Any]):
    state = serializers.CharField(required=False, help_text="open, in_progress or closed (closed → only open).")
    assignee = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="A staff user of the ticket's library who works tickets; null: nobody.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, help_text="A note with the change.")


class TicketCommentRequestSerializer(serializers.Serializer[Any]):
    body = serializers.CharField(allow_blank=True, help_text=f"At most {COMMENT_MAX} characters; the patron sees it.")


# --- views ----------------------------------------------------------------------------------------------------


def _ticket(request: Request, ticket_id: object) -> Ticket:
    return for_staff(actor_of(request), Ticket.objects.all(), ticket_id, WORK, "ticket")


def _shown(ticket: Ticket) -> dict[str, Any]:
    loaded = Ticket.objects.select_related("assignee").prefetch_related("comments").get(pk=ticket.pk)
    return TicketDetailSerializer(loaded).data


class TicketListView(APIView):
    @extend_schema(
        operation_id="tickets_list", summary="Tickets of your libraries, most recently changed first",
        parameters=[
            OpenApiParameter("library", str, description="Id or code of one of your libraries."),
            OpenApiParameter("center", int), OpenApiParameter("patron", int, description="The reporter."),
            OpenApiParameter("assignee", int), OpenApiParameter("state", str, enum=[s.value for s in State]),
            OpenApiParameter("page", int), OpenApiParameter("page_size", int, description="1-200, default 50."),
        ],
        responses={200: TicketSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        state = _one_of(request, "state", [s.value for s in State])
        rows = staff_tickets(
            _scope(request, WORK), center=_int(request, "center"), state=state or None,
            assignee=_int(request, "assignee"),
        )  # fmt: skip
        if (patron := _int(request, "patron")) is not None:
            rows = rows.filter(reporter_id=patron)
        return paged(self, request, rows, TicketSerializer)


class TicketDetailView(APIView):
    @extend_schema(
        operation_id="tickets_read", summary="A ticket with its comments and changes",
        responses={200: TicketDetailSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, ticket_id: int) -> Response:
        found = _ticket(request, ticket_id)
        services.record_staff_read(actor=actor_of(request), ticket=found)
        return Response(_shown(found))

    @extend_schema(
        operation_id="tickets_update", summary="Assign, move (open, in progress, closed) and/or note",
        description=(
            "Moving to the state the ticket is in, or assigning it to whom it has, changes nothing (safe to "
            "retry). A closed ticket can only be reopened: anything else is 409 `transition_not_allowed`. An "
            "assignee who is not staff of the ticket's library with the desk permission is a field error."
        ),
        request=TicketUpdateSerializer, responses={200: TicketDetailSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, ticket_id: int) -> Response:
        found = _ticket(request, ticket_id)
        data = _body(request, TicketUpdateSerializer)
        if not data:
            raise FieldError("state", "Send state, assignee and/or comment.")
        changed = services.update(actor=actor_of(request), ticket=found, data=data)
        return Response(_shown(changed))


class TicketCommentView(APIView):
    @idempotent
    @extend_schema(
        operation_id="tickets_comment", summary="Add a staff comment (the patron sees it in the portal)",
        description="The same text again within a minute is kept once and answered with that comment.",
        request=TicketCommentRequestSerializer, responses={201: TicketCommentSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, ticket_id: int) -> Response:
        found = _ticket(request, ticket_id)
        data = _body(request, TicketCommentRequestSerializer)
        made = services.staff_comment(actor=actor_of(request), ticket=found, body=data.get("body", ""))
        return Response(TicketCommentSerializer(made).data, status=status.HTTP_201_CREATED)
