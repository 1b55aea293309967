"""The REST API, version 1. Every patron is loaded through the access gatekeeper; every change goes
through a domain service, inside its transaction, with the same rules as the staff pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Prefetch, prefetch_related_objects
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from patronage.blocks import services as block_services
from patronage.blocks.models import Block
from patronage.core.audit import Actor
from patronage.core.errors import FieldError, NotFound
from patronage.core.models import AuditEvent
from patronage.fines import queries as fine_queries
from patronage.fines import services as fine_services
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.access import libraries_with, permissions_by_library
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons import queries as patron_queries
from patronage.patrons import services as patron_services
from patronage.patrons.access import patron_for_staff, patrons_for_staff
from patronage.patrons.models import Barcode, Patron, PatronType
from patronage.privacy import export
from patronage.privacy import services as privacy_services
from patronage.standing import services as standing_services
from patronage.standing.rules import Action

from . import serializers as s
from .authentication import client_ip
from .errors import problem
from .idempotency import idempotent

PROBLEM = OpenApiResponse(description="A problem document (RFC 9457): type, title, status, detail, code.")
COMMON_ERRORS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}


def actor_of(request: Request) -> Actor:
    return Actor(user=request.user, channel=AuditEvent.Channel.API, source_ip=client_ip(request))


def _body(request: Request, serializer_class: type[Serializer[Any]]) -> dict[str, Any]:
    """Check the body's shape; values are checked by the services. Keys not sent stay absent."""
    if not isinstance(request.data, dict):
        raise FieldError("request", "Send a JSON object.")
    serializer = serializer_class(data=request.data, partial=True)
    serializer.is_valid(raise_exception=True)
    sent = set(request.data)
    unknown = sorted(sent - set(serializer.fields))
    if unknown:
        raise FieldError(unknown[0], f"Unknown field; send only {', '.join(serializer.fields)}.")
    return {k: v for k, v in serializer.validated_data.items() if k in sent}


def _with_details(patron: Patron) -> Patron:
    """The patron with what the full representation shows, in a fixed number of queries."""
    loaded = patron
    prefetch_related_objects([loaded], "barcodes", "phones", "addresses")
    standing = standing_services.standing(loaded)
    loaded.api_balance = fine_queries.balance(loaded.pk)  # type: ignore[attr-defined]
    loaded.api_standing = {  # type: ignore[attr-defined]
        "clear": standing.is_clear,
        "conditions": [r.as_dict() for r in standing.conditions],
        "decisions": {
            action.value: {"allowed": d.allowed, "reasons": d.codes}
            for action in Action
            for d in [standing.decision(action)]
        },
    }
    return loaded


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def paged(view: APIView, request: Request, rows: Any, serializer: Any) -> Response:
    """One page of ``rows`` with count, next and previous links."""
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class MeView(APIView):
    @extend_schema(operation_id="me", summary="Who the token acts as, and where", responses={200: s.MeSerializer})
    def get(self, request: Request) -> Response:
        held = permissions_by_library(request.user)
        libraries = Library.objects.filter(pk__in=list(held)).prefetch_related("branches", "patron_types")
        token = request.auth if request.auth is not None and hasattr(request.auth, "prefix") else None
        return Response(
            {
                "username": request.user.get_username(),
                "token": s.TokenInfoSerializer(token).data if token else None,
                "libraries": s.LibrarySerializer(
                    libraries.order_by("name"), many=True, context={"permissions": held}
                ).data,
            }
        )


class LibraryListView(APIView):
    @extend_schema(
        operation_id="libraries_list", summary="Libraries you belong to, with branches and patron types",
        responses={200: s.LibrarySerializer(many=True)},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        held = permissions_by_library(request.user)
        libraries = Library.objects.filter(pk__in=list(held)).prefetch_related("branches", "patron_types")
        return Response(s.LibrarySerializer(libraries.order_by("name"), many=True, context={"permissions": held}).data)


class PatronTypeListView(APIView):
    @extend_schema(
        operation_id="patron_types_list", summary="Patron types of your libraries",
        parameters=[OpenApiParameter("library", str, description="Id or code of one of your libraries.")],
        responses={200: s.PatronTypeSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        held = list(permissions_by_library(request.user))
        if request.query_params.get("library"):
            held = [_library_id(request, request.query_params["library"], Permission.VIEW_PATRONS)]
        types = PatronType.objects.filter(library_id__in=held).order_by("library_id", "name")
        return Response(s.PatronTypeSerializer(types, many=True).data)

    @idempotent
    @extend_schema(
        operation_id="patron_types_create", summary="Add a patron type",
        request=s.PatronTypeCreateSerializer, responses={201: s.PatronTypeSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        data = _body(request, s.PatronTypeCreateSerializer)
        if "library" not in data:
            raise FieldError("library", "Name the library (id or code) the patron type belongs to.")
        library = Library.objects.get(pk=_library_id(request, data.pop("library"), Permission.CONFIGURE_LIBRARY))
        saved = patron_services.save_patron_type(actor=actor_of(request), library=library, patron_type=None, data=data)
        return Response(s.PatronTypeSerializer(saved).data, status=status.HTTP_201_CREATED)


class PatronTypeDetailView(APIView):
    @extend_schema(
        operation_id="patron_types_update", summary="Change a patron type (applies at once to its patrons)",
        request=s.PatronTypeWriteSerializer, responses={200: s.PatronTypeSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, type_id: int) -> Response:
        allowed = libraries_with(request.user, Permission.CONFIGURE_LIBRARY)
        found = PatronType.objects.filter(pk=type_id, library_id__in=allowed).select_related("library").first()
        if found is None:
            raise NotFound("No such patron type at a library you configure.")
        data = _body(request, s.PatronTypeWriteSerializer)
        saved = patron_services.save_patron_type(
            actor=actor_of(request), library=found.library, patron_type=found, data=data
        )
        return Response(s.PatronTypeSerializer(saved).data)


class PatronListView(APIView):
    @extend_schema(
        operation_id="patrons_search",
        summary="Find patrons",
        description="By barcode (current or old), Person-ID, e-mail, phone or name prefix ('smi', 'smith, jo').",
        parameters=[
            OpenApiParameter("q", str, description="What to look for; empty lists every patron."),
            OpenApiParameter("library", str, description="Id or code of one of your libraries; default all."),
            OpenApiParameter("sort", str, enum=list(patron_queries.SORTS), description="Default name."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="1-200, default 50."),
        ],
        responses={200: s.PatronSummarySerializer(many=True), **COMMON_ERRORS},
    )
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        library_id = None
        if request.query_params.get("library"):
            library_id = _library_id(request, request.query_params["library"], Permission.VIEW_PATRONS)
        scope = patrons_for_staff(actor, Permission.VIEW_PATRONS, library_id=library_id)
        region = "US"
        if library_id is not None:
            region = Library.objects.filter(pk=library_id).values_list("country", flat=True).first() or region
        found = patron_queries.search_patrons(
            scope, request.query_params.get("q", ""), region=region, sort=request.query_params.get("sort", "name")
        ).prefetch_related(Prefetch("barcodes", queryset=Barcode.objects.filter(is_active=True)))
        return paged(self, request, found, s.PatronSummarySerializer)

    @idempotent
    @extend_schema(
        operation_id="patrons_create", summary="Register a patron", request=s.PatronCreateSerializer,
        responses={201: s.PatronSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        data = _body(request, s.PatronCreateSerializer)
        if "library" not in data:
            raise FieldError("library", "Name the library (id or code) the patron registers at.")
        library = Library.objects.get(pk=_library_id(request, data.pop("library"), Permission.EDIT_PATRON))
        patron = patron_services.create_patron(
            actor=actor,
            library=library,
            data=data,
            barcode=data.pop("barcode", None),
            phones=data.pop("phones", None),
            addresses=data.pop("addresses", ()),
        )
        return Response(s.PatronSerializer(_with_details(patron)).data, status=status.HTTP_201_CREATED)


def _library_id(request: Request, value: object, permission: Permission) -> int:
    """One of the caller's libraries where they hold ``permission``; any other answers "not found"."""
    text = str(value).strip()
    allowed = libraries_with(request.user, permission)
    found = Library.objects.filter(pk__in=allowed)
    match = found.filter(code=text).values_list("pk", flat=True).first()
    if match is None and text.isdigit():
        match = found.filter(pk=int(text)).values_list("pk", flat=True).first()
    if match is None:
        raise NotFound(f"No library {text[:40]!r} where you may {permission.label.split(' - ')[-1].lower()}.")
    return match


def _scope(request: Request, permission: Permission) -> list[int]:
    """The caller's libraries with ``permission``, or the one named by ``?library=``."""
    if request.query_params.get("library"):
        return [_library_id(request, request.query_params["library"], permission)]
    return list(libraries_with(request.user, permission))


def _int(request: Request, name: str) -> int | None:
    text = request.query_params.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise FieldError(name, "Give a number (an id).")
    return int(text)


def _one_of(request: Request, name: str, values: Sequence[str]) -> str:
    """The query parameter ``name``, stripped: empty when not given, else one of ``values``."""
    text = request.query_params.get(name, "").strip()
    if text and text not in values:
        raise FieldError(name, f"Use one of {', '.join(values)}.")
    return text


class PatronDetailView(APIView):
    @extend_schema(
        operation_id="patrons_read", summary="A patron's record", responses={200: s.PatronSerializer, **COMMON_ERRORS}
    )
    def get(self, request: Request, pk: int) -> Response:
        patron = patron_for_staff(actor_of(request), pk, Permission.VIEW_PATRONS, read_purpose="api")
        return Response(s.PatronSerializer(_with_details(patron)).data)

    @extend_schema(
        operation_id="patrons_update", summary="Change a patron's record",
        description="Only the fields sent change. Everything is saved, or on any error nothing is.",
        request=s.PatronWriteSerializer, responses={200: s.PatronSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.EDIT_PATRON)
        data = _body(request, s.PatronWriteSerializer)
        phones, addresses = data.pop("phones", None), data.pop("addresses", None)
        patron = patron_services.update_patron(
            actor=actor, patron=patron, data=data, phones=phones, addresses=addresses
        )
        return Response(s.PatronSerializer(_with_details(patron)).data)

    @extend_schema(
        operation_id="patrons_delete", summary="Delete a patron with nothing outstanding",
        description="Refused (409, with every reason) while the patron owes money or has anything out.",
        responses={204: None, **COMMON_ERRORS},
    )  # fmt: skip
    def delete(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.DELETE_PATRON)
        privacy_services.delete_patron(actor=actor, patron=patron)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PatronStandingView(APIView):
    @extend_schema(
        operation_id="patrons_standing", summary="What limits the patron now, and what each action would answer",
        responses={200: s.StandingSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        patron = patron_for_staff(actor_of(request), pk, Permission.VIEW_PATRONS)
        return Response(_with_details(patron).api_standing)  # type: ignore[attr-defined]


class PatronExportView(APIView):
    @extend_schema(
        operation_id="patrons_export", summary="Everything held about the patron (audited)",
        responses={200: OpenApiTypes.OBJECT, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.DOWNLOAD_PATRON_DATA)
        return Response(export.export_data(actor=actor, patron=patron))


class PatronBarcodeView(APIView):
    @idempotent
    @extend_schema(
        operation_id="patrons_barcode_issue", summary="Issue a new card; the active one becomes history",
        request=s.BarcodeIssueSerializer, responses={201: s.BarcodeSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.EDIT_PATRON)
        data = _body(request, s.BarcodeIssueSerializer)
        barcode = patron_services.issue_barcode(actor=actor, patron=patron, number=str(data.get("number", "")))
        return Response(s.BarcodeSerializer(barcode).data, status=status.HTTP_201_CREATED)


def _account(patron: Patron) -> dict[str, Any]:
    return s.AccountSerializer(
        {
            "balance": fine_queries.balance(patron.pk),
            "currency": patron.library.currency,
            "fine_limit": patron.patron_type.fine_limit,
            "fees": fine_queries.fees_with_outstanding(patron.pk),
            "payments": Payment.objects.filter(patron=patron)
            .prefetch_related("allocations")
            .order_by("received_at", "id"),
            "waivers": Waiver.objects.filter(patron=patron).order_by("waived_at", "id"),
        }
    ).data


class PatronAccountView(APIView):
    @extend_schema(
        operation_id="patrons_account", summary="Balance, fees, payments and waivers",
        responses={200: s.AccountSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        patron = patron_for_staff(actor_of(request), pk, Permission.VIEW_PATRONS)
        return Response(_account(patron))


class PatronFeeView(APIView):
    @idempotent
    @extend_schema(
        operation_id="patrons_fee_add", summary="Charge a fee", request=s.FeeCreateSerializer,
        responses={201: s.FeeSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.ADD_FEES)
        data = _body(request, s.FeeCreateSerializer)
        if "amount" not in data:
            raise FieldError("amount", "Give the amount of the fee, e.g. 2.50.")
        fee = fine_services.add_fee(actor=actor, patron=patron, **data)
        fee = fine_queries.fees_with_outstanding(patron.pk).get(pk=fee.pk)
        return Response(s.FeeSerializer(fee).data, status=status.HTTP_201_CREATED)


class PatronPaymentView(APIView):
    @extend_schema(
        operation_id="patrons_payment_take",
        summary="Take a payment (applied to the oldest fees first)",
        description=(
            "Send a unique `Idempotency-Key` header per payment. Repeating the request with the same key "
            "records nothing new and answers 200 with the first payment; the same key with other details is a 409."
        ),
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
        request=s.PaymentCreateSerializer,
        responses={201: s.PaymentSerializer, 200: s.PaymentSerializer, **COMMON_ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.TAKE_PAYMENTS)
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise FieldError("Idempotency-Key", "Send a unique Idempotency-Key header with each payment, e.g. a UUID.")
        data = _body(request, s.PaymentCreateSerializer)
        for required in ("amount", "method"):
            if required not in data:
                raise FieldError(required, f"The payment needs its {required}.")
        payment, created = fine_services.take_payment(actor=actor, patron=patron, idempotency_key=key, **data)
        payment = Payment.objects.prefetch_related("allocations").get(pk=payment.pk)
        return Response(
            s.PaymentSerializer(payment).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PatronWaiverView(APIView):
    @idempotent
    @extend_schema(
        operation_id="patrons_fee_waive", summary="Waive what is owed on a fee, or part of it",
        request=s.WaiverCreateSerializer, responses={201: s.WaiverSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int, fee: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.WAIVE_FEES)
        found = Fee.objects.filter(pk=fee, patron=patron).select_related("patron").first()
        if found is None:
            raise NotFound("No such fee for this patron.")
        data = _body(request, s.WaiverCreateSerializer)
        waiver = fine_services.waive_fee(
            actor=actor, fee=found, reason=str(data.get("reason", "")), amount=data.get("amount")
        )
        return Response(s.WaiverSerializer(waiver).data, status=status.HTTP_201_CREATED)


class PatronBlocksView(APIView):
    @extend_schema(
        operation_id="patrons_blocks", summary="The patron's blocks, current and past",
        responses={200: s.BlockSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        patron = patron_for_staff(actor_of(request), pk, Permission.VIEW_PATRONS)
        return Response(s.BlockSerializer(Block.objects.filter(patron=patron).order_by("-created_at"), many=True).data)

    @idempotent
    @extend_schema(
        operation_id="patrons_block", summary="Block the patron, with a comment",
        request=s.BlockCreateSerializer, responses={201: s.BlockSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.BLOCK_PATRON)
        data = _body(request, s.BlockCreateSerializer)
        block = block_services.block_patron(
            actor=actor, patron=patron, comment=str(data.get("comment", "")), ends_at=data.get("ends_at")
        )
        return Response(s.BlockSerializer(block).data, status=status.HTTP_201_CREATED)


class PatronUnblockView(APIView):
    @idempotent
    @extend_schema(
        operation_id="patrons_unblock", summary="Lift the patron's block, with a comment",
        request=s.UnblockSerializer, responses={200: s.BlockSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.BLOCK_PATRON)
        data = _body(request, s.UnblockSerializer)
        lifted = block_services.unblock_patron(actor=actor, patron=patron, comment=str(data.get("comment", "")))
        return Response(s.BlockSerializer(lifted, many=True).data)


__all__ = ["problem"]
