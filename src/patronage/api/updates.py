"""The REST API of online account updates: update requests (list per branch, read, verify, reject), the
patron access options (read and change, per library or branch profile) and the postal codes (list, import).

Requests load through ``updates.services.request_for_staff`` (another library's is 404, a member without
the permission to edit patrons 403); every change goes through ``updates.services``, as on the staff pages.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patronage.core.errors import FieldError, NotFound
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission
from patronage.updates import rules, services
from patronage.updates.models import AccessOptions, PostalCode, UpdateRequest

from .views import COMMON_ERRORS, _body, _int, _library_id, _scope, actor_of, paged

EDIT = Permission.EDIT_PATRON
CONFIGURE = Permission.CONFIGURE_LIBRARY

# --- shapes ------------------------------------------------------------------------------------------------


class UpdateRequestSerializer(serializers.ModelSerializer[UpdateRequest]):
    old = serializers.JSONField(help_text="The requested details as the record held them when the patron asked.")
    new = serializers.JSONField(
        help_text="What the patron asked for: primary_email, alternate_email, phones {kind: number}, address {…}."
    )

    class Meta:
        model = UpdateRequest
        fields = [
            "id", "library", "patron", "branch", "state", "old", "new", "reason", "created_at", "resolved_at",
            "resolved_by_label",
        ]  # fmt: skip


class RejectSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(allow_blank=True, help_text="Why; the patron reads it (e-mail and portal).")


class AccessOptionsSerializer(serializers.Serializer[Any]):
    may_change_notification_method = serializers.BooleanField(allow_null=True, required=False)
    confirmation_email = serializers.BooleanField(allow_null=True, required=False)
    address_change = serializers.CharField(allow_blank=True, required=False, help_text='off, request, direct or "".')
    email_change = serializers.CharField(allow_blank=True, required=False, help_text='off, request, direct or "".')
    phone_change = serializers.CharField(allow_blank=True, required=False, help_text='off, request, direct or "".')
    connection_branch = serializers.CharField(
        allow_blank=True, allow_null=True, required=False, help_text='Library profile only: a branch code, or "".'
    )
    patron_types = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Library profile only: ids or codes of the patron types that may request updates online.",
    )  # fmt: skip


class ResolvedOptionsSerializer(serializers.Serializer[Any]):
    library = serializers.IntegerField()
    branch = serializers.IntegerField(allow_null=True)
    stored = serializers.DictField(help_text='This profile\'s own values; null or "": as the level above.')
    values = serializers.DictField(help_text="The values in force here.")
    sources = serializers.DictField(help_text="Where each value in force comes from.")
    phone_validation = serializers.BooleanField(help_text="System level only.")
    patron_types = serializers.ListField(child=serializers.CharField(), help_text="Codes that may update online.")
    opt_outs_offered = serializers.ListField(
        child=serializers.CharField(), help_text="Reminder notices patrons may opt out of (set with the notices)."
    )


class PostalCodeSerializer(serializers.ModelSerializer[PostalCode]):
    class Meta:
        model = PostalCode
        fields = ["id", "library", "code", "city", "region"]


class PostalCodeRowSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(allow_blank=True)
    city = serializers.CharField(allow_blank=True, required=False)
    region = serializers.CharField(allow_blank=True, required=False)


class PostalCodeImportSerializer(serializers.Serializer[Any]):
    library = serializers.CharField(help_text="Id or code of one of your libraries.")
    codes = PostalCodeRowSerializer(many=True, required=False)
    csv = serializers.CharField(
        required=False, help_text="Instead of codes: the text of a postal_code,city,region CSV."
    )
    replace = serializers.BooleanField(required=False, help_text="Remove the codes not given.")


class ImportResultSerializer(serializers.Serializer[Any]):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    removed = serializers.IntegerField()


# --- views ----------------------------------------------------------------------------------------------------


def _request(request: Request, update_request_id: object) -> UpdateRequest:
    return services.request_for_staff(actor_of(request), update_request_id, EDIT)


class UpdateRequestListView(APIView):
    @extend_schema(
        operation_id="update_requests_list", summary="Update requests of your libraries, oldest first",
        parameters=[
            OpenApiParameter("library", str, description="Id or code of one of your libraries."),
            OpenApiParameter("branch", int, description="One branch's queue."),
            OpenApiParameter("state", str, enum=[s.value for s in UpdateRequest.State], description="Default pending."),
            OpenApiParameter("patron", int), OpenApiParameter("page", int), OpenApiParameter("page_size", int),
        ],
        responses={200: UpdateRequestSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        state = request.query_params.get("state", UpdateRequest.State.PENDING).strip()
        if state not in UpdateRequest.State.values:
            raise FieldError("state", f"Use one of {', '.join(UpdateRequest.State.values)}.")
        rows = UpdateRequest.objects.filter(library_id__in=_scope(request, EDIT), state=state)
        if (branch := _int(request, "branch")) is not None:
            rows = rows.filter(branch_id=branch)
        if (patron := _int(request, "patron")) is not None:
            rows = rows.filter(patron_id=patron)
        return paged(self, request, rows.order_by("created_at", "id"), UpdateRequestSerializer)


class UpdateRequestDetailView(APIView):
    @extend_schema(
        operation_id="update_requests_read", summary="An update request with old and new values",
        responses={200: UpdateRequestSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, update_request_id: int) -> Response:
        return Response(UpdateRequestSerializer(_request(request, update_request_id)).data)


class UpdateRequestVerifyView(APIView):
    @extend_schema(
        operation_id="update_requests_verify", summary="Verify: make the change and lift verification_pending",
        description="Verifying a verified request changes nothing (safe to retry); a rejected one is 409 "
        "`already_resolved`. A value the patron record refuses is a field error and nothing changes.",
        request=None, responses={200: UpdateRequestSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, update_request_id: int) -> Response:
        found = services.verify(actor=actor_of(request), request=_request(request, update_request_id))
        return Response(UpdateRequestSerializer(found).data)


class UpdateRequestRejectView(APIView):
    @extend_schema(
        operation_id="update_requests_reject", summary="Reject: keep the record, lift the block, tell the patron why",
        description="The same reason again on a rejected request changes nothing (safe to retry).",
        request=RejectSerializer, responses={200: UpdateRequestSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, update_request_id: int) -> Response:
        found = _request(request, update_request_id)
        data = _body(request, RejectSerializer)
        done = services.reject(actor=actor_of(request), request=found, reason=data.get("reason", ""))
        return Response(UpdateRequestSerializer(done).data)


def _profile(request: Request) -> tuple[Library, Branch | None]:
    library_id = _library_id(request, request.query_params.get("library", ""), CONFIGURE)
    library = Library.objects.get(pk=library_id)
    branch_id = _int(request, "branch")
    if branch_id is None:
        return library, None
    branch = Branch.objects.filter(library=library, pk=branch_id).first()
    if branch is None:
        raise NotFound(f"No branch {branch_id} at {library.name}.")
    return library, branch


def _options(library: Library, branch: Branch | None) -> dict[str, Any]:
    row = AccessOptions.objects.filter(library=library, branch=branch).select_related("connection_branch").first()
    stored: dict[str, Any] = {n: getattr(row, n) if row is not None else None for n in rules.OPTION_NAMES}
    if branch is None:
        stored["connection_branch"] = row.connection_branch.code if row is not None and row.connection_branch else None
    resolved = services.resolve(library, branch)
    return {
        "library": library.pk, "branch": branch.pk if branch else None, "stored": stored,
        "values": dict(resolved.values), "sources": dict(resolved.sources), "phone_validation": resolved.phone_validation,
        "patron_types": list(library.patron_types.filter(may_self_update=True).order_by("code").values_list("code", flat=True)),
        "opt_outs_offered": [k.code for k in services.offered_opt_outs(library)],
    }  # fmt: skip


_PROFILE_PARAMS = [
    OpenApiParameter("library", str, required=True, description="Id or code of one of your libraries."),
    OpenApiParameter("branch", int, description="A branch profile; without it, the library's options."),
]


class AccessOptionsView(APIView):
    @extend_schema(
        operation_id="access_options_read", summary="Patron access options of a library or branch profile",
        parameters=_PROFILE_PARAMS, responses={200: ResolvedOptionsSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        return Response(_options(*_profile(request)))

    @extend_schema(
        operation_id="access_options_update", summary="Change a profile's patron access options (keys sent only)",
        parameters=_PROFILE_PARAMS, request=AccessOptionsSerializer,
        responses={200: ResolvedOptionsSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request) -> Response:
        library, branch = _profile(request)
        data = _body(request, AccessOptionsSerializer)
        services.save_options(actor=actor_of(request), library=library, branch=branch, data=data)
        return Response(_options(library, branch))


class PostalCodeListView(APIView):
    @extend_schema(
        operation_id="postal_codes_list", summary="A library's postal codes",
        parameters=[OpenApiParameter("library", str, required=True), OpenApiParameter("page", int)],
        responses={200: PostalCodeSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        library_id = _library_id(request, request.query_params.get("library", ""), CONFIGURE)
        return paged(
            self, request, PostalCode.objects.filter(library_id=library_id).order_by("code"), PostalCodeSerializer
        )

    @extend_schema(
        operation_id="postal_codes_import", summary="Import postal codes (all or nothing)",
        request=PostalCodeImportSerializer, responses={200: ImportResultSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        data = _body(request, PostalCodeImportSerializer)
        library = Library.objects.get(pk=_library_id(request, data.get("library", ""), CONFIGURE))
        if "csv" in data:
            rows = services.parse_postal_csv(data["csv"])
        elif "codes" in data:
            rows = list(data["codes"])
        else:
            raise FieldError("codes", "Send codes (a list of {code, city, region}) or csv (the file's text).")
        result = services.import_postal_codes(
            actor=actor_of(request), library=library, rows=rows, replace=bool(data.get("replace"))
        )
        return Response(ImportResultSerializer(result).data)
