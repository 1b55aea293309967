"""The REST API for the desk: checkouts (list, read, walk-up), checking a reservation out, check-in, copying
a checkout into a new reservation, and the scheduled lending jobs' last runs. Objects are loaded through
``resources.access`` (another library's checkout is 404, a member without the permission 403) and every
change goes through ``circulation.services``, as on the staff desk pages."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patronage.circulation import queries as desk_queries
from patronage.circulation import services as desk
from patronage.circulation.models import Checkout, CheckoutItem
from patronage.core import clock
from patronage.core.errors import FieldError, PermissionDenied
from patronage.patrons.access import patron_for_staff
from patronage.reservations.models import Reservation
from patronage.resources.access import center_for_staff, for_staff

from .idempotency import idempotent
from .lending import DESK, _full, _reservation
from .serializers import ReservationSerializer
from .views import COMMON_ERRORS, _body, _int, _one_of, _scope, actor_of, paged

# --- shapes ------------------------------------------------------------------------------------------------


class CheckoutItemSerializer(serializers.ModelSerializer[CheckoutItem]):
    identifier = serializers.CharField(source="resource.identifier")
    returned_by = serializers.SerializerMethodField()

    class Meta:
        model = CheckoutItem
        fields = ["resource", "identifier", "line", "returned_at", "returned_by", "condition_note"]

    def get_returned_by(self, item: CheckoutItem) -> str | None:
        return item.returned_by.get_username() if item.returned_by else None


class OverdueInvoiceSerializer(serializers.Serializer[Any]):
    fee = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    outstanding = serializers.DecimalField(max_digits=12, decimal_places=2)


class CheckoutSerializer(serializers.ModelSerializer[Checkout]):
    items = CheckoutItemSerializer(many=True, read_only=True)
    late = serializers.SerializerMethodField(help_text="Past its end and not all back (whatever `state` says yet).")
    overdue_invoice = serializers.SerializerMethodField()

    class Meta:
        model = Checkout
        fields = [
            "id", "library", "center", "patron", "reservation", "state", "late", "checked_out_at",
            "checked_out_by_label", "due_at", "late_since", "completed_at", "overdue_invoice", "items",
        ]  # fmt: skip

    def get_late(self, checkout: Checkout) -> bool:
        return checkout.completed_at is None and checkout.due_at < clock.now()

    @extend_schema_field(OverdueInvoiceSerializer(allow_null=True))
    def get_overdue_invoice(self, checkout: Checkout) -> dict[str, Any] | None:
        found = desk_queries.overdue_fee(checkout)
        if found is None:
            return None
        fee, outstanding = found
        return OverdueInvoiceSerializer({"fee": fee.pk, "amount": fee.amount, "outstanding": outstanding}).data


class CheckOutRequestSerializer(serializers.Serializer[Any]):
    scanned = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Identifiers of the resources handed out."
    )
    override_comment = serializers.CharField(
        required=False, help_text="Needs the override permission; hands out despite the patron's standing."
    )


class WalkUpRequestSerializer(CheckOutRequestSerializer):
    patron = serializers.IntegerField()
    center = serializers.IntegerField()
    ends_at = serializers.CharField(help_text="ISO 8601; without an offset it is the center's local wall-clock time.")
    title = serializers.CharField(required=False, allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True)


class CheckInRequestSerializer(serializers.Serializer[Any]):
    scanned = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True,
        help_text="Identifiers coming back; leave out (or null) to take back everything still out.",
    )  # fmt: skip
    condition_notes = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False,
        help_text="A note per identifier returned, e.g. {\"LAP-1\": \"scratched lid\"}.",
    )  # fmt: skip


class CopyRequestSerializer(serializers.Serializer[Any]):
    starts_at = serializers.CharField(help_text="ISO 8601; without an offset it is the center's local wall-clock time.")
    ends_at = serializers.CharField()
    override_comment = serializers.CharField(required=False, help_text="Needs the override permission.")


class JobStatusSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    last_started_at = serializers.DateTimeField(allow_null=True)
    last_finished_at = serializers.DateTimeField(allow_null=True)
    runs = serializers.IntegerField()
    touched_here = serializers.IntegerField(help_text="Rows the last run changed at your libraries.")
    stale = serializers.BooleanField(help_text="No finished run for longer than three job intervals.")
    stale_after_seconds = serializers.IntegerField()


# --- views ----------------------------------------------------------------------------------------------------

_LOADED = ("items__resource", "items__returned_by")


def _checkout(request: Request, checkout_id: object) -> Checkout:
    return for_staff(actor_of(request), Checkout.objects.all(), checkout_id, DESK, "checkout")


def _shown(checkout: Checkout) -> dict[str, Any]:
    loaded = Checkout.objects.prefetch_related(*_LOADED).get(pk=checkout.pk)
    return CheckoutSerializer(loaded).data


def _scanned(data: dict[str, Any]) -> list[str]:
    if "scanned" not in data or data["scanned"] is None:
        raise FieldError("scanned", 'Send the identifiers of the resources handed out, e.g. ["LAP-1"].')
    return [str(v) for v in data["scanned"]]


class CheckoutListView(APIView):
    @extend_schema(
        operation_id="checkouts_list", summary="Checkouts, by due time",
        parameters=[
            OpenApiParameter("library", str, description="Id or code of one of your libraries."),
            OpenApiParameter("center", int), OpenApiParameter("patron", int),
            OpenApiParameter("state", str, enum=[x.value for x in Checkout.State]),
            OpenApiParameter("page", int), OpenApiParameter("page_size", int, description="1-200, default 50."),
        ],
        responses={200: CheckoutSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        rows = Checkout.objects.filter(library_id__in=_scope(request, DESK))
        if (place := _int(request, "center")) is not None:
            rows = rows.filter(center_id=place)
        if (patron := _int(request, "patron")) is not None:
            rows = rows.filter(patron_id=patron)
        if state := _one_of(request, "state", Checkout.State.values):
            rows = rows.filter(state=state)
        rows = rows.order_by("due_at", "id").prefetch_related(*_LOADED)
        return paged(self, request, rows, CheckoutSerializer)

    @idempotent
    @extend_schema(
        operation_id="checkouts_walk_up", summary="Walk-up checkout: reserve from now and hand out in one step",
        description=(
            "Every reservation rule but the lead time is checked; refused with 409 and every reason, and then "
            "nothing is reserved or handed out."
        ),
        request=WalkUpRequestSerializer, responses={201: CheckoutSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        data = _body(request, WalkUpRequestSerializer)
        for required in ("patron", "center", "ends_at"):
            if required not in data:
                raise FieldError(required, f"The checkout needs its {required.replace('_', ' ')}.")
        patron = patron_for_staff(actor, data["patron"], DESK)
        place = center_for_staff(actor, data["center"], DESK)
        made = desk.walk_up(
            actor=actor, patron=patron, center=place, ends_at=data["ends_at"], scanned=_scanned(data),
            title=data.get("title", ""), note=data.get("note", ""), override_comment=data.get("override_comment"),
        )  # fmt: skip
        return Response(_shown(made), status=status.HTTP_201_CREATED)


class CheckoutDetailView(APIView):
    @extend_schema(
        operation_id="checkouts_read", summary="A checkout with its items and any overdue invoice",
        responses={200: CheckoutSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, checkout_id: int) -> Response:
        return Response(_shown(_checkout(request, checkout_id)))


class ReservationCheckOutView(APIView):
    @idempotent
    @extend_schema(
        operation_id="reservations_check_out", summary="Hand out a reserved reservation's resources",
        description=(
            "`scanned` names what is handed out; a resource of the same type may stand in for a reserved one. "
            "A patron whose standing forbids it is refused with 409 `refused` and every reason with its remedy, "
            "unless an `override_comment` is sent with the override permission. Before the start: "
            "409 `pickup_too_early`; after the end: `reservation_ended`; not reserved: `transition_not_allowed`."
        ),
        request=CheckOutRequestSerializer, responses={201: CheckoutSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, reservation_id: int) -> Response:
        found = _reservation(request, reservation_id, DESK)
        data = _body(request, CheckOutRequestSerializer)
        made = desk.check_out(
            actor=actor_of(request), reservation=found, scanned=_scanned(data),
            override_comment=data.get("override_comment"),
        )  # fmt: skip
        return Response(_shown(made), status=status.HTTP_201_CREATED)


class CheckInView(APIView):
    @idempotent
    @extend_schema(
        operation_id="checkouts_check_in", summary="Take back everything still out, or only the scanned ones",
        description="When the last resource is back the checkout and its reservation are completed; "
        "a completed checkout answers 409 `checkout_completed`.",
        request=CheckInRequestSerializer, responses={200: CheckoutSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, checkout_id: int) -> Response:
        found = _checkout(request, checkout_id)
        data = _body(request, CheckInRequestSerializer)
        scanned = data.get("scanned")
        desk.check_in(
            actor=actor_of(request), checkout=found, scanned=None if scanned is None else [str(v) for v in scanned],
            condition_notes=data.get("condition_notes") or {},
        )  # fmt: skip
        return Response(_shown(found))


class CopyView(APIView):
    @idempotent
    @extend_schema(
        operation_id="checkouts_copy", summary="Reserve a completed checkout's resources again for a new span",
        description="Same patron, center, title, note and pickup; one line per resource handed out. Every "
        "reservation rule applies (409 `refused` with every reason); an open checkout is 409 "
        "`checkout_not_completed`.",
        request=CopyRequestSerializer, responses={201: ReservationSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, checkout_id: int) -> Response:
        found = _checkout(request, checkout_id)
        data = _body(request, CopyRequestSerializer)
        for required in ("starts_at", "ends_at"):
            if required not in data:
                raise FieldError(required, f"The new reservation needs its {required.replace('_', ' ')}.")
        made = desk.copy_checkout(
            actor=actor_of(request), checkout=found, starts_at=data["starts_at"], ends_at=data["ends_at"],
            channel=Reservation.Channel.API, override_comment=data.get("override_comment"),
        )  # fmt: skip
        return Response(_full(made), status=status.HTTP_201_CREATED)


class LendingJobsView(APIView):
    @extend_schema(
        operation_id="lending_jobs", summary="When each scheduled lending job last ran, and whether it still runs",
        description="`stale` is true when a job has not finished a run for three times "
        "`PATRONAGE_JOBS_INTERVAL_SECONDS` (or never ran): the worker has probably stopped.",
        parameters=[OpenApiParameter("library", str, description="Id or code of one of your libraries.")],
        responses={200: JobStatusSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        held = _scope(request, DESK)
        if not held:
            raise PermissionDenied(f"You need the permission {DESK.label!r} at one of your libraries.")
        rows = [
            {
                "name": job.name,
                "last_started_at": job.run.last_started_at if job.run else None,
                "last_finished_at": job.last_finished_at,
                "runs": job.run.runs if job.run else 0,
                "touched_here": job.touched_here,
                "stale": job.stale,
                "stale_after_seconds": int(job.stale_after.total_seconds()),
            }
            for job in desk_queries.job_statuses(held, now=clock.now())
        ]
        return Response(JobStatusSerializer(rows, many=True).data)
