"""The REST API for lending: resource types, resources, center policies, availability, reservations and
authorizations. Objects are loaded through ``resources.access`` (another library's object is 404, a member
without the permission 403) and every change goes through the domain services, as on the staff pages."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Case, IntegerField, Value, When
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patronage.core import clock
from patronage.core.errors import FieldError, NotFound, PermissionDenied, Refused, ValidationFailed
from patronage.libraries.access import libraries_with
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.access import patron_for_staff
from patronage.reservations import queries as availability
from patronage.reservations import services as booking
from patronage.reservations.models import CenterPolicy, Reservation, ReservationSeries
from patronage.reservations.rules import WEEKDAYS, State
from patronage.resources import services as catalog
from patronage.resources.access import center_for_staff, for_staff, resource_for_staff, resource_type_for_staff
from patronage.resources.models import Authorization, Resource, ResourceType

from . import serializers as s
from .errors import ProblemResponse, problem
from .idempotency import idempotent
from .views import COMMON_ERRORS, _body, _int, _library_id, _one_of, _scope, actor_of, paged

MANAGE = Permission.MANAGE_RESOURCES
DESK = Permission.CHECK_OUT


# --- resource types ---------------------------------------------------------------------------------------


class ResourceTypeListView(APIView):
    @extend_schema(
        operation_id="resource_types_list", summary="Resource types of your libraries (a tree: see `parent`)",
        parameters=[OpenApiParameter("library", str, description="Id or code of one of your libraries.")],
        responses={200: s.ResourceTypeSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        held = sorted(set(libraries_with(request.user, DESK)) | set(libraries_with(request.user, MANAGE)))
        if request.query_params.get("library"):
            wanted = request.query_params["library"].strip()
            match = Library.objects.filter(pk__in=held).filter(code=wanted).values_list("pk", flat=True).first()
            if match is None and wanted.isdigit() and int(wanted) in held:
                match = int(wanted)
            if match is None:
                raise NotFound(f"No library {wanted[:40]!r} where you may check out or manage resources.")
            held = [match]
        types = (
            ResourceType.objects.filter(library_id__in=held).prefetch_related("centers").order_by("library_id", "name")
        )
        return Response(s.ResourceTypeSerializer(types, many=True).data)

    @idempotent
    @extend_schema(
        operation_id="resource_types_create", summary="Add a resource type",
        request=s.ResourceTypeCreateSerializer, responses={201: s.ResourceTypeSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        data = _body(request, s.ResourceTypeCreateSerializer)
        if "library" not in data:
            raise FieldError("library", "Name the library (id or code) the type belongs to.")
        library = Library.objects.get(pk=_library_id(request, data.pop("library"), MANAGE))
        saved = catalog.save_resource_type(actor=actor_of(request), library=library, data=data)
        return Response(s.ResourceTypeSerializer(saved).data, status=status.HTTP_201_CREATED)


class ResourceTypeDetailView(APIView):
    @extend_schema(
        operation_id="resource_types_read", summary="A resource type",
        responses={200: s.ResourceTypeSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, resource_type_id: int) -> Response:
        actor = actor_of(request)
        try:
            found = resource_type_for_staff(actor, resource_type_id, MANAGE)
        except PermissionDenied:
            found = resource_type_for_staff(actor, resource_type_id, DESK)
        return Response(s.ResourceTypeSerializer(found).data)

    @extend_schema(
        operation_id="resource_types_update", summary="Change a resource type; only the fields sent change",
        request=s.ResourceTypeWriteSerializer, responses={200: s.ResourceTypeSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, resource_type_id: int) -> Response:
        actor = actor_of(request)
        found = resource_type_for_staff(actor, resource_type_id, MANAGE)
        data = _body(request, s.ResourceTypeWriteSerializer)
        saved = catalog.save_resource_type(actor=actor, library=found.library, resource_type=found, data=data)
        return Response(s.ResourceTypeSerializer(saved).data)


# --- resources ----------------------------------------------------------------------------------------------


class ResourceListView(APIView):
    @extend_schema(
        operation_id="resources_list", summary="Resources, filtered by library, type, center and status",
        parameters=[
            OpenApiParameter("library", str, description="Id or code of one of your libraries."),
            OpenApiParameter("resource_type", int), OpenApiParameter("center", int),
            OpenApiParameter("in_service", bool, description="true: in service now; false: out of service now."),
            OpenApiParameter("page", int), OpenApiParameter("page_size", int, description="1-200, default 50."),
        ],
        responses={200: s.ResourceSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        rows = Resource.objects.filter(library_id__in=_scope(request, MANAGE)).order_by("library_id", "name", "id")
        if (kind := _int(request, "resource_type")) is not None:
            rows = rows.filter(resource_type_id=kind)
        if (place := _int(request, "center")) is not None:
            rows = rows.filter(center_id=place)
        flag = request.query_params.get("in_service", "").strip().lower()
        if flag in {"true", "false"}:
            out = rows.filter(out_of_service_from__lte=clock.now())
            rows = rows.exclude(pk__in=out.values("pk")) if flag == "true" else out
        return paged(self, request, rows, s.ResourceSerializer)

    @idempotent
    @extend_schema(
        operation_id="resources_create", summary="Add a resource",
        request=s.ResourceCreateSerializer, responses={201: s.ResourceSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        data = _body(request, s.ResourceCreateSerializer)
        if "library" not in data:
            raise FieldError("library", "Name the library (id or code) the resource belongs to.")
        library = Library.objects.get(pk=_library_id(request, data.pop("library"), MANAGE))
        saved = catalog.save_resource(actor=actor_of(request), library=library, data=data)
        return Response(s.ResourceSerializer(saved).data, status=status.HTTP_201_CREATED)


class ResourceDetailView(APIView):
    @extend_schema(
        operation_id="resources_read", summary="A resource", responses={200: s.ResourceSerializer, **COMMON_ERRORS}
    )
    def get(self, request: Request, resource_id: int) -> Response:
        return Response(s.ResourceSerializer(resource_for_staff(actor_of(request), resource_id, MANAGE)).data)

    @extend_schema(
        operation_id="resources_update", summary="Change a resource; only the fields sent change",
        description="Moving it to another type or center is refused (409) while open reservations hold it.",
        request=s.ResourceWriteSerializer, responses={200: s.ResourceSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, resource_id: int) -> Response:
        actor = actor_of(request)
        found = resource_for_staff(actor, resource_id, MANAGE)
        data = _body(request, s.ResourceWriteSerializer)
        saved = catalog.save_resource(actor=actor, library=found.library, resource=found, data=data)
        return Response(s.ResourceSerializer(saved).data)


class ResourceServiceView(APIView):
    @idempotent
    @extend_schema(
        operation_id="resources_service_status", summary="Take a resource out of service, or return it",
        description="Taking it out never waits for reservations; the open ones it breaks are listed.",
        request=s.ServiceStatusSerializer, responses={200: s.ServiceStatusResultSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, resource_id: int) -> Response:
        actor = actor_of(request)
        found = resource_for_staff(actor, resource_id, MANAGE)
        data = _body(request, s.ServiceStatusSerializer)
        if "in_service" not in data:
            raise FieldError("in_service", "Say whether the resource is in service (true) or not (false).")
        affected: list[int] = []
        if data["in_service"]:
            catalog.return_to_service(actor=actor, resource=found)
        else:
            affected = catalog.take_out_of_service(
                actor=actor, resource=found, from_=data.get("out_of_service_from"), comment=data.get("comment", "")
            )
        found.refresh_from_db()
        return Response(s.ServiceStatusResultSerializer({"resource": found, "affected_reservations": affected}).data)


# --- center policies and availability -------------------------------------------------------------------


class CenterPolicyView(APIView):
    @extend_schema(
        operation_id="center_policy_read", summary="A checkout center's reservation rules",
        responses={200: s.CenterPolicySerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, center_id: int) -> Response:
        place = center_for_staff(actor_of(request), center_id, DESK)
        policy = CenterPolicy.objects.filter(center=place).first() or CenterPolicy(center=place)
        return Response(s.CenterPolicySerializer(policy).data)

    @extend_schema(
        operation_id="center_policy_update", summary="Change a checkout center's reservation rules",
        request=s.CenterPolicyWriteSerializer, responses={200: s.CenterPolicySerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, center_id: int) -> Response:
        actor = actor_of(request)
        place = center_for_staff(actor, center_id, Permission.CONFIGURE_LIBRARY)
        data = _body(request, s.CenterPolicyWriteSerializer)
        policy = booking.save_center_policy(actor=actor, center=place, data=data)
        return Response(s.CenterPolicySerializer(policy).data)


class AvailabilityView(APIView):
    @extend_schema(
        operation_id="availability", summary="What is free at a checkout center for a span",
        description=(
            "Free units of every type the center lends, or of `resource_type` with its free resources; with "
            "`resource`, also why that resource is not free (empty when it is). Buffers are counted."
        ),
        parameters=[
            OpenApiParameter("center", int, required=True),
            OpenApiParameter("start", str, required=True, description="ISO 8601; no offset: the center's time."),
            OpenApiParameter("end", str, required=True),
            OpenApiParameter("resource_type", int), OpenApiParameter("resource", int),
        ],
        responses={200: s.AvailabilitySerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        center_id = _int(request, "center")
        if center_id is None:
            raise FieldError("center", "Name the checkout center (its id).")
        place = center_for_staff(actor, center_id, DESK)
        zone = place.library.time_zone
        starts = booking.parse_instant(request.query_params.get("start", ""), "start", zone)
        ends = booking.parse_instant(request.query_params.get("end", ""), "end", zone)
        booking.check_span(starts, ends, end_field="end")
        body: dict[str, Any] = {"center": place.pk, "starts_at": starts, "ends_at": ends}
        kind_id = _int(request, "resource_type")
        if kind_id is not None:
            kind = ResourceType.objects.filter(pk=kind_id, library_id=place.library_id, centers=place).first()
            if kind is None:
                raise NotFound(f"{place.name} lends no such resource type.")
            free = availability.type_availability(place, kind, starts, ends)
            body["types"] = [
                {"resource_type": kind.pk, "free_units": free.free_units,
                 "free_resources": [r.pk for r in free.free_resources]}
            ]  # fmt: skip
        else:
            counts = availability.free_counts_by_type(place, starts, ends)
            body["types"] = [{"resource_type": pk, "free_units": n} for pk, n in sorted(counts.items())]
        resource_id = _int(request, "resource")
        if resource_id is not None:
            item = resource_for_staff(actor, resource_id, DESK)
            if item.center_id != place.pk:
                raise FieldError("resource", f"{item} is lent from another center.")
            body["resource"] = item.pk
            body["why_not"] = [r.as_dict() for r in availability.why_not(item, starts, ends)]
        return Response(s.AvailabilitySerializer(body).data)


# --- reservations -------------------------------------------------------------------------------------------


def _reservation(request: Request, reservation_id: object, permission: Permission) -> Reservation:
    queryset = Reservation.objects.select_related("library", "center", "center__library", "patron")
    return for_staff(actor_of(request), queryset, reservation_id, permission, "reservation")


def _full(reservation: Reservation) -> dict[str, Any]:
    loaded = Reservation.objects.prefetch_related("lines", "events").get(pk=reservation.pk)
    return s.ReservationSerializer(loaded).data


_EDITS = ("starts_at", "ends_at", "lines", "title", "note", "pickup_option", "delivery_location", "override_comment")


class ReservationListView(APIView):
    @extend_schema(
        operation_id="reservations_list", summary="Reservations, pending approval first, then by start",
        parameters=[
            OpenApiParameter("library", str), OpenApiParameter("center", int), OpenApiParameter("patron", int),
            OpenApiParameter("state", str, enum=[x.value for x in State]),
            OpenApiParameter("from", str, description="Those ending after this instant (ISO 8601 with offset)."),
            OpenApiParameter("to", str, description="Those starting before this instant."),
            OpenApiParameter("page", int), OpenApiParameter("page_size", int),
        ],
        responses={200: s.ReservationSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        rows = Reservation.objects.filter(library_id__in=_scope(request, DESK))
        if (place := _int(request, "center")) is not None:
            rows = rows.filter(center_id=place)
        if (patron := _int(request, "patron")) is not None:
            rows = rows.filter(patron_id=patron)
        if state := _one_of(request, "state", [x.value for x in State]):
            rows = rows.filter(state=state)
        for name, lookup in (("from", "ends_at__gt"), ("to", "starts_at__lt")):
            if request.query_params.get(name):
                rows = rows.filter(**{lookup: booking.parse_instant(request.query_params[name], name, "UTC")})
        first = Case(When(state=State.PENDING_APPROVAL, then=Value(0)), default=Value(1), output_field=IntegerField())
        rows = rows.annotate(pending_first=first).order_by("pending_first", "starts_at", "id")
        return paged(self, request, rows.prefetch_related("lines", "events"), s.ReservationSerializer)

    @idempotent
    @extend_schema(
        operation_id="reservations_create", summary="Reserve resources for a patron",
        description="Refused with 409 and every reason (`reasons`: code, message, overridable, details).",
        request=s.ReservationCreateSerializer, responses={201: s.ReservationSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        data = _body(request, s.ReservationCreateSerializer)
        for required in ("patron", "center", "starts_at", "ends_at", "lines"):
            if required not in data:
                raise FieldError(required, f"The reservation needs its {required.replace('_', ' ')}.")
        patron = patron_for_staff(actor, data.pop("patron"), DESK)
        place = center_for_staff(actor, data.pop("center"), DESK)
        if "series" in data:
            data["series"] = for_staff(
                actor, ReservationSeries.objects.all(), data["series"], DESK, "reservation series"
            )
        made = booking.create_reservation(
            actor=actor, patron=patron, center=place, channel=Reservation.Channel.API, **data
        )
        return Response(_full(made), status=status.HTTP_201_CREATED)


class ReservationDetailView(APIView):
    @extend_schema(
        operation_id="reservations_read", summary="A reservation with its lines and events",
        responses={200: s.ReservationSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, reservation_id: int) -> Response:
        return Response(_full(_reservation(request, reservation_id, DESK)))

    @extend_schema(
        operation_id="reservations_update", summary="Change a reservation waiting for approval",
        description="Only the fields sent change; `lines`, when sent, replaces every line.",
        request=s.ReservationWriteSerializer, responses={200: s.ReservationSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, reservation_id: int) -> Response:
        found = _reservation(request, reservation_id, DESK)
        data = _body(request, s.ReservationWriteSerializer)
        changed = booking.edit_reservation(actor=actor_of(request), reservation=found, **data)
        return Response(_full(changed))


class _ReservationStepView(APIView):
    step = ""

    def post(self, request: Request, reservation_id: int) -> Response:
        actor = actor_of(request)
        found = _reservation(request, reservation_id, DESK)
        data = _body(request, s.ReservationStepSerializer)
        comment = str(data.get("comment", ""))
        if self.step == "approve":
            booking.approve_reservation(
                actor=actor, reservation=found, comment=comment, override_comment=data.get("override_comment")
            )
        elif self.step == "reject":
            booking.reject_reservation(actor=actor, reservation=found, comment=comment)
        else:
            booking.cancel_reservation(actor=actor, reservation=found, comment=comment)
        return Response(_full(found))


_STEP: dict[str, Any] = {
    "request": s.ReservationStepSerializer,
    "responses": {200: s.ReservationSerializer, **COMMON_ERRORS},
}


class ReservationApproveView(_ReservationStepView):
    step = "approve"

    @idempotent
    @extend_schema(
        operation_id="reservations_approve", summary="Approve a pending reservation (checked again first)", **_STEP
    )
    def post(self, request: Request, reservation_id: int) -> Response:
        return super().post(request, reservation_id)


class ReservationRejectView(_ReservationStepView):
    step = "reject"

    @idempotent
    @extend_schema(operation_id="reservations_reject", summary="Reject a pending reservation with a comment", **_STEP)
    def post(self, request: Request, reservation_id: int) -> Response:
        return super().post(request, reservation_id)


class ReservationCancelView(_ReservationStepView):
    step = "cancel"

    @idempotent
    @extend_schema(operation_id="reservations_cancel", summary="Cancel a reservation; its resources are freed", **_STEP)
    def post(self, request: Request, reservation_id: int) -> Response:
        return super().post(request, reservation_id)


# --- authorizations ------------------------------------------------------------------------------------------


class AuthorizationListView(APIView):
    @extend_schema(
        operation_id="authorizations_list", summary="The patron's authorizations for resource types",
        responses={200: s.AuthorizationSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        patron = patron_for_staff(actor_of(request), pk, MANAGE)
        found = Authorization.objects.filter(patron=patron).order_by("resource_type_id")
        return Response(s.AuthorizationSerializer(found, many=True).data)

    @idempotent
    @extend_schema(
        operation_id="authorizations_grant", summary="Authorize the patron for a type (granting again renews)",
        request=s.AuthorizationGrantSerializer, responses={201: s.AuthorizationSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, MANAGE)
        data = _body(request, s.AuthorizationGrantSerializer)
        if "resource_type" not in data:
            raise FieldError("resource_type", "Name the resource type (its id).")
        kind = ResourceType.objects.filter(pk=data["resource_type"], library_id=patron.library_id).first()
        if kind is None:
            raise FieldError("resource_type", f"No such resource type at {patron.library.name}.")
        granted = catalog.grant_authorization(
            actor=actor, patron=patron, resource_type=kind, expires_on=data.get("expires_on")
        )
        return Response(s.AuthorizationSerializer(granted).data, status=status.HTTP_201_CREATED)


class AuthorizationDetailView(APIView):
    @extend_schema(
        operation_id="authorizations_revoke", summary="Revoke the patron's authorization for a type",
        responses={204: None, **COMMON_ERRORS},
    )  # fmt: skip
    def delete(self, request: Request, pk: int, resource_type_id: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, MANAGE)
        kind = ResourceType.objects.filter(pk=resource_type_id, library_id=patron.library_id).first()
        if kind is None:
            raise NotFound("No such resource type.")
        catalog.revoke_authorization(actor=actor, patron=patron, resource_type=kind)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- repeating reservations (series) ---------------------------------------------------------------------


class RepeatSerializer(serializers.Serializer[Any]):
    freq = serializers.ChoiceField(choices=["daily", "weekly", "monthly"])
    interval = serializers.IntegerField(required=False, help_text="Every n days, weeks or months (1-99, default 1).")
    weekdays = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Weekly: the days, mon … sun (default the start's). Monthly by weekday: one (default the start's).",
    )
    monthly_by = serializers.ChoiceField(
        choices=["date", "weekday"],
        required=False,
        help_text="Monthly: on the start's date (the 29th-31st fall on the last day of shorter months) or weekday.",
    )
    ordinal = serializers.CharField(
        required=False, help_text='Monthly by weekday: 1-5 or "last" (the 5th skips months without one).'
    )
    until = serializers.DateField(required=False, help_text="The last date, inclusive, on the center's calendar.")
    count = serializers.IntegerField(required=False, help_text="How many occurrences; each center caps it.")


class SeriesCreateSerializer(s.ReservationCreateSerializer):
    repeat = RepeatSerializer()
    all_or_nothing = serializers.BooleanField(
        required=False, help_text="true: one conflicting occurrence refuses them all (409) and nothing is booked."
    )


class SeriesSubstituteSerializer(serializers.Serializer[Any]):
    line = serializers.IntegerField(help_text="The line's index in `lines` as sent (0-based).")
    resource = serializers.IntegerField(help_text="A free resource of the same type at the center.")


class SeriesConflictSerializer(serializers.Serializer[Any]):
    occurrence = serializers.IntegerField(help_text="Index of the occurrence in the series (0-based).")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(required=False)
    reasons = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
    substitutes = SeriesSubstituteSerializer(many=True)


class SeriesSerializer(serializers.ModelSerializer[ReservationSeries]):
    occurrences = s.ReservationSerializer(many=True, read_only=True)

    class Meta:
        model = ReservationSeries
        fields = ["id", "library", "center", "patron", "rule", "created_at", "occurrences"]


class SeriesCreatedSerializer(serializers.Serializer[Any]):
    series_id = serializers.IntegerField()
    rule = serializers.CharField(help_text="RFC 5545 recurrence rule on the center's wall clock.")
    booked = s.ReservationSerializer(many=True)
    conflicts = SeriesConflictSerializer(many=True)


class SeriesCancelledSerializer(serializers.Serializer[Any]):
    cancelled = serializers.ListField(child=serializers.IntegerField(), help_text="The reservations cancelled.")
    series = SeriesSerializer()


# The service's names for the parts of a repeat, as this API names them in field errors.
_REPEAT_FIELDS = {
    "repeat.frequency": "repeat.freq",
    "repeat.month_day": "repeat.monthly_by",
    "repeat.week_of_month": "repeat.ordinal",
    "repeat": "repeat.until",  # the rule gives no date before its end
}
# The center's caps refuse a series in the domain; here each is a field error on the part that sets it.
_CAP_FIELDS = {
    "series_too_long": ("repeat.count", "repeat.until"),
    "series_beyond_horizon": ("repeat.until", "repeat.count"),
}
_REPEAT_KEYS = frozenset(RepeatSerializer().fields)


def _repeat(sent: Any, given: dict[str, Any], starts_at: object, zone: str) -> dict[str, Any]:
    """The service's ``repeat`` mapping from this API's: ``freq``, ``monthly_by`` and ``ordinal`` renamed,
    "monthly on the date" taken from the start's local date."""
    unknown = sorted(set(sent) - _REPEAT_KEYS) if isinstance(sent, dict) else []
    if unknown:
        raise FieldError(f"repeat.{unknown[0]}", f"Unknown field; send only {', '.join(sorted(_REPEAT_KEYS))}.")
    repeat: dict[str, Any] = {
        "frequency": given.get("freq", ""),
        "interval": given.get("interval"),
        "weekdays": given.get("weekdays") or [],
        "until": given.get("until"),
        "count": given.get("count"),
    }
    by = given.get("monthly_by")
    if repeat["frequency"] != "monthly":
        if by is not None or given.get("ordinal") is not None:
            raise FieldError("repeat.monthly_by", "monthly_by and ordinal apply to monthly repeats only.")
        return repeat
    if by is None:
        raise FieldError("repeat.monthly_by", 'Say how it repeats monthly: on the "date" or on a "weekday".')
    start = booking.parse_instant(starts_at, "starts_at", zone).astimezone(ZoneInfo(zone))
    if by == "date":
        if repeat["weekdays"]:
            raise FieldError("repeat.weekdays", "Monthly on the date takes no weekdays; leave them out.")
        repeat["month_day"] = start.day
    else:
        repeat["week_of_month"] = given.get("ordinal")
        repeat["weekdays"] = repeat["weekdays"] or [WEEKDAYS[start.weekday()]]
    return repeat


def _api_repeat_errors(errors: dict[str, list[str]], by: object) -> dict[str, list[str]]:
    moved = dict(_REPEAT_FIELDS)
    if by == "weekday":
        moved["repeat.month_day"] = "repeat.ordinal"
    found: dict[str, list[str]] = {}
    for key, messages in errors.items():
        found.setdefault(moved.get(key, key), []).extend(messages)
    return found


def _conflicts(reasons: list[dict[str, str]]) -> list[dict[str, Any]]:
    """An all-or-nothing refusal's reasons grouped by occurrence, with the substitutes offered."""
    groups: dict[int, dict[str, Any]] = {}
    for reason in reasons:
        if "occurrence" not in reason:
            continue
        index = int(reason["occurrence"])
        group = groups.setdefault(
            index, {"occurrence": index, "starts_at": reason["starts_at"], "reasons": [], "substitutes": {}}
        )
        plain = {k: v for k, v in reason.items() if k not in {"occurrence", "starts_at"} and "." not in k}
        group["reasons"].append(plain)
        group["substitutes"] |= {
            int(k.removeprefix("substitute.")): int(v) for k, v in reason.items() if k.startswith("substitute.")
        }
    return [
        {**g, "substitutes": [{"line": line, "resource": pk} for line, pk in sorted(g["substitutes"].items())]}
        for g in groups.values()
    ]


def _series(series_id: int) -> dict[str, Any]:
    loaded = ReservationSeries.objects.prefetch_related("occurrences__lines", "occurrences__events").get(pk=series_id)
    return SeriesSerializer(loaded).data


class ReservationSeriesListView(APIView):
    @idempotent
    @extend_schema(
        operation_id="reservation_series_create", summary="Book a repeating reservation (a series)",
        description=(
            "The body of a reservation (its `starts_at`/`ends_at` are the first occurrence, on the center's wall "
            "clock) plus `repeat` and `all_or_nothing`. Every free occurrence is booked at the same local time "
            "across daylight-saving changes; each other one is listed in `conflicts` with its reasons and, per "
            "specific line, a free resource of the same type (`substitutes`) to book with POST /reservations/. "
            "409 `refused` when a series-wide rule refuses it, when no occurrence is free, or with "
            "`all_or_nothing` and any conflict (then `conflicts` lists them and nothing is booked). A repeat "
            "beyond the center's caps (occurrences, days ahead) is a 400 field error on `repeat.count` or "
            "`repeat.until`."
        ),
        request=SeriesCreateSerializer, responses={201: SeriesCreatedSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        data = _body(request, SeriesCreateSerializer)
        for required in ("patron", "center", "starts_at", "ends_at", "lines", "repeat"):
            if required not in data:
                raise FieldError(required, f"The series needs its {required.replace('_', ' ')}.")
        patron = patron_for_staff(actor, data.pop("patron"), DESK)
        place = center_for_staff(actor, data.pop("center"), DESK)
        given = dict(data.pop("repeat"))
        repeat = _repeat(request.data.get("repeat"), given, data["starts_at"], place.library.time_zone)
        try:
            result = booking.create_series(
                actor=actor, patron=patron, center=place, channel=Reservation.Channel.API, repeat=repeat, **data
            )
        except (FieldError, ValidationFailed) as exc:
            raise ValidationFailed(_api_repeat_errors(exc.errors, given.get("monthly_by"))) from None
        except Refused as exc:
            codes = [str(r.get("code", "")) for r in exc.reasons]
            if codes and all(code in _CAP_FIELDS for code in codes):
                errors: dict[str, list[str]] = {}
                for reason in exc.reasons:
                    first, second = _CAP_FIELDS[reason["code"]]
                    field = first if given.get(first.removeprefix("repeat.")) is not None else second
                    errors.setdefault(field, []).append(reason["message"])
                raise ValidationFailed(errors) from None
            conflicts = _conflicts(exc.reasons)
            if not conflicts:
                raise
            body = problem(409, exc.code, exc.message, reasons=exc.reasons, conflicts=conflicts)
            return ProblemResponse(body, status=409)
        booked = Reservation.objects.prefetch_related("lines", "events").filter(pk__in=[r.pk for r in result.booked])
        body = {
            "series_id": result.series.pk,
            "rule": result.series.rule,
            "booked": list(booked.order_by("starts_at", "pk")),
            "conflicts": [
                {
                    "occurrence": c.index, "starts_at": c.starts_at, "ends_at": c.ends_at, "reasons": c.reasons,
                    "substitutes": [{"line": line, "resource": r.pk} for line, r in sorted(c.substitutes.items())],
                }
                for c in result.conflicts
            ],
        }  # fmt: skip
        location = f"/api/v1/reservation-series/{result.series.pk}/"
        return Response(
            SeriesCreatedSerializer(body).data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )


class ReservationSeriesDetailView(APIView):
    @extend_schema(
        operation_id="reservation_series_read", summary="A series with every occurrence (its reservations)",
        responses={200: SeriesSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, series_id: int) -> Response:
        found = for_staff(actor_of(request), ReservationSeries.objects.all(), series_id, DESK, "reservation series")
        return Response(_series(found.pk))


class ReservationCancelSeriesView(APIView):
    @idempotent
    @extend_schema(
        operation_id="reservations_cancel_series", summary="Cancel this occurrence and the later ones of its series",
        description=(
            "Cancels this occurrence and every later one still pending or reserved; earlier ones, and ones "
            "cancelled, rejected or checked out, stay. 409 `occurrence_in_past` when this one has started, "
            "`not_in_series` when the reservation is not part of a series."
        ),
        request=s.ReservationStepSerializer, responses={200: SeriesCancelledSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, reservation_id: int) -> Response:
        actor = actor_of(request)
        found = _reservation(request, reservation_id, DESK)
        data = _body(request, s.ReservationStepSerializer)
        if "override_comment" in data:
            raise FieldError("override_comment", "Cancelling needs no override; send only a comment.")
        cancelled = booking.cancel_series(actor=actor, from_occurrence=found, comment=str(data.get("comment", "")))
        assert found.series_id is not None  # noqa: S101 - cancel_series refuses a reservation outside a series
        body = {"cancelled": [r.pk for r in cancelled], "series": _series(found.series_id)}
        return Response(body)
