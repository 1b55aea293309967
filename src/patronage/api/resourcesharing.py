"""Interlibrary-loan patron validation for resource-sharing systems and add-ons (ReShare, ILLiad addons …).

Callers are protocol clients (Administration, Protocol clients), not staff: they authenticate with their
login and secret as HTTP Basic, or with the secret alone as a bearer secret; staff API tokens are refused
here. A client sees only the patrons of its own library. The answer is the same checklist as the staff page
(``patronage.resourcesharing.eligibility``), and every call is audited with the client and the patron.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patronage.core.errors import FieldError, ValidationFailed
from patronage.resourcesharing import clients, eligibility
from patronage.resourcesharing.models import Protocol, ProtocolClient
from patronage.standing.rules import Reason

from .authentication import client_ip

PROBLEM = OpenApiResponse(description="A problem document (RFC 9457): type, title, status, detail, code.")


class ProtocolClientAuthentication(BaseAuthentication):
    """``Authorization: Basic base64(login:secret)`` or ``Authorization: Bearer pcs_…`` (the secret alone)."""

    def authenticate(self, request: Request) -> tuple[None, ProtocolClient] | None:
        try:
            given = clients.credentials_from_header(get_authorization_header(request), other_schemes=True)
        except clients.MalformedCredentials as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        if given is None:
            return None
        login, secret = given
        try:
            client = clients.authenticate_client(Protocol.REST, login, secret, client_ip(request))
        except clients.ClientLocked as exc:
            raise exceptions.Throttled(wait=exc.retry_after_seconds, detail=exc.message) from None
        except clients.ClientAuthenticationFailed as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return None, client

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="patronage-clients"'


class ProtocolClientScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "patronage.api.resourcesharing.ProtocolClientAuthentication"
    name = "protocolClientAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A protocol client's login and secret (Administration, Protocol clients). "
            "'Authorization: Bearer <secret>' is accepted too. Staff API tokens are not.",
        }


class IsProtocolClient(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, ProtocolClient):
            raise exceptions.NotAuthenticated("Sign in as a protocol client (HTTP Basic with its login and secret).")
        return True


class IllValidateRequestSerializer(serializers.Serializer[dict[str, Any]]):
    identifier = serializers.CharField(
        max_length=64, help_text="The patron's user id (Person-ID), barcode, or record number (see identifier_type)."
    )
    identifier_type = serializers.ChoiceField(
        choices=[t.value for t in eligibility.IdentifierType], required=False, default="any",
        help_text="What the identifier is; 'any' (default) tries the user id (Person-ID), then any barcode. "
        "'patron_id' (the record number) only with the patron's pin.",
    )  # fmt: skip
    pin = serializers.CharField(
        max_length=256, required=False, trim_whitespace=False,
        help_text="Optional: the patron's PIN or portal password, checked like a portal sign-in (same lock-out).",
    )  # fmt: skip


class IllReasonSerializer(serializers.Serializer[Reason]):
    code = serializers.CharField(help_text="A stable reason code (standing conditions, or patron_not_found).")
    message = serializers.CharField(help_text="What it means, in words a patron may read.")
    remedy = serializers.CharField(help_text="What fixes it.")
    details = serializers.DictField(child=serializers.CharField())


class IllCheckSerializer(serializers.Serializer[eligibility.Item]):
    key = serializers.CharField()
    question = serializers.CharField()
    status = serializers.CharField(help_text="pass, fail, warn (a warning that refuses nothing) or not_checked.")
    data = serializers.DictField(child=serializers.CharField(), help_text="What the check looked at.")  # type: ignore[assignment]
    fix = serializers.CharField()
    codes = serializers.ListField(child=serializers.CharField())


class IllPatronSerializer(serializers.Serializer[Any]):
    patron_id = serializers.IntegerField()
    user_id = serializers.CharField(allow_null=True, help_text="The Person-ID, if the record has one.")
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    patron_type = serializers.CharField(help_text="The patron type's code (stable; a ReShare profile).")


class IllValidationSerializer(serializers.Serializer[Any]):
    eligible = serializers.BooleanField(help_text="Whether the patron may request through interlibrary loan.")
    found = serializers.BooleanField()
    matched_by = serializers.CharField(help_text="user_id, barcode or patron_id; empty when nothing matched.")
    pin_checked = serializers.BooleanField()
    patron = IllPatronSerializer(allow_null=True)
    reasons = IllReasonSerializer(many=True, help_text="Every reason the request is refused (empty when eligible).")
    warnings = IllReasonSerializer(many=True, help_text="Things staff should look at; they refuse nothing.")
    checks = IllCheckSerializer(many=True, help_text="The checklist, in order, each with pass/fail.")


def _reason(r: Reason, *, staff: bool = False) -> dict[str, Any]:
    return {
        "code": r.code.value,
        "message": r.staff_message if staff else r.patron_message,
        "remedy": r.remedy,
        "details": dict(r.details),
    }


def representation(result: eligibility.Result, pin_checked: bool) -> dict[str, Any]:
    patron = result.patron
    if result.decision is None:
        reasons: list[dict[str, Any]] = [
            {
                "code": eligibility.PATRON_NOT_FOUND,
                "message": "No patron of this library has this identifier.",
                "remedy": result.items[0].fix,
                "details": {},
            }
        ]
    else:
        reasons = [_reason(r) for r in result.decision.reasons]
    return {
        "eligible": result.eligible,
        "found": patron is not None,
        "matched_by": result.matched_by,
        "pin_checked": pin_checked,
        "patron": None
        if patron is None
        else {
            "patron_id": patron.pk,
            "user_id": patron.person_id,
            "first_name": patron.first_name,
            "last_name": patron.last_name,
            "patron_type": patron.patron_type.code,
        },
        "reasons": reasons,
        # The warnings are for staff; they name no other record.
        "warnings": [_reason(r, staff=True) for r in result.warnings],
        "checks": [
            {
                "key": i.key,
                "question": i.question,
                "status": i.status.value,
                "data": i.data,
                "fix": i.fix,
                "codes": list(i.codes),
            }
            for i in result.items
        ],
    }


_EXAMPLE_REQUEST = {"identifier": "21234000123456", "identifier_type": "barcode"}


class IllValidateView(APIView):
    authentication_classes = [ProtocolClientAuthentication]
    permission_classes = [IsProtocolClient]

    @extend_schema(
        operation_id="ill_validate",
        summary="May this patron request through interlibrary loan? (protocol clients)",
        description="Answers the interlibrary-loan checklist for a patron of the client's library: every reason "
        "code, warnings for staff, and each check with the data it looked at. An unknown identifier (or a patron "
        "of another library) answers 200 with found=false and the code patron_not_found. A wrong PIN is a "
        "problem (400, patron_authentication_failed); repeated wrong PINs lock like portal sign-ins (429).",
        request=IllValidateRequestSerializer,
        responses={200: IllValidationSerializer, 400: PROBLEM, 401: PROBLEM, 429: PROBLEM},
        examples=[OpenApiExample("By barcode", value=_EXAMPLE_REQUEST, request_only=True)],
        tags=["resource sharing"],
    )
    def post(self, request: Request) -> Response:
        client = request.auth
        if not isinstance(client, ProtocolClient):  # IsProtocolClient let only clients through
            raise exceptions.NotAuthenticated()
        if not isinstance(request.data, dict):
            raise FieldError("request", "Send a JSON object with 'identifier' (and optionally identifier_type, pin).")
        unknown = sorted(set(request.data) - set(IllValidateRequestSerializer().fields))
        if unknown:
            raise FieldError(unknown[0], "Unknown field; send only identifier, identifier_type and pin.")
        serializer = IllValidateRequestSerializer(data=request.data)
        if not serializer.is_valid():
            raise ValidationFailed({k: [str(m) for m in v] for k, v in serializer.errors.items()})
        data = serializer.validated_data
        identifier = str(data["identifier"]).strip()
        if not identifier:
            raise FieldError("identifier", "Enter the patron's user id, barcode or record number.")
        result, pin_checked = eligibility.validate(
            client=client,
            identifier=identifier,
            kind=eligibility.IdentifierType(data.get("identifier_type") or "any"),
            pin=data.get("pin"),
            address=client_ip(request),
        )
        return Response(representation(result, pin_checked))
