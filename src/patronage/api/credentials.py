"""A patron's portal sign-in through the API: its state, lifting a lock-out, sending a set-password link.

The same services as the staff patron page (``patronage.credentials.services``), the same permission
(``edit_patron`` to change, ``view_patrons`` to look).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patronage.credentials import services as credentials
from patronage.credentials.models import PasswordLink
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.access import patron_for_staff
from patronage.patrons.models import Patron

from .idempotency import idempotent
from .views import COMMON_ERRORS, _body, _library_id, actor_of


class SignInStateSerializer(serializers.Serializer[credentials.SignInState]):
    has_password = serializers.BooleanField(help_text="Whether the patron has a portal password.")
    institution = serializers.BooleanField(
        help_text="Whether the library's institution checks the patron's password (LDAP); no local one is kept."
    )
    password_set_at = serializers.DateTimeField(allow_null=True)
    locked = serializers.BooleanField(help_text="Whether failed attempts have locked the patron's sign-in.")
    locked_until = serializers.DateTimeField(allow_null=True, help_text="When the lock ends by itself.")


class PasswordLinkRequestSerializer(serializers.Serializer[PasswordLink]):
    purpose = serializers.ChoiceField(
        choices=PasswordLink.Purpose.choices,
        required=False,
        help_text="Default: 'set' for a patron without a password, else 'reset'.",
    )


class PasswordLinkSerializer(serializers.Serializer[PasswordLink]):
    purpose = serializers.CharField()
    expires_at = serializers.DateTimeField()
    sent_to = serializers.EmailField(source="patron.primary_email")


def _state(patron: Patron) -> dict[str, object]:
    state = credentials.sign_in_state(patron)
    return dict(SignInStateSerializer(state).data)


class PatronSignInLockView(APIView):
    @extend_schema(
        operation_id="patrons_sign_in_state", summary="Whether the patron has a portal password and is locked out",
        responses={200: SignInStateSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        patron = patron_for_staff(actor_of(request), pk, Permission.VIEW_PATRONS)
        return Response(_state(patron))

    @extend_schema(
        operation_id="patrons_sign_in_lock_clear", summary="Lift the patron's portal sign-in lock (audited)",
        responses={200: SignInStateSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def delete(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.EDIT_PATRON)
        credentials.clear_lock(actor=actor, patron=patron)
        return Response(_state(patron))


class PatronPasswordLinkView(APIView):
    @idempotent
    @extend_schema(
        operation_id="patrons_password_link_send",
        summary="E-mail the patron a single-use link to set a portal password",
        request=PasswordLinkRequestSerializer, responses={201: PasswordLinkSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        patron = patron_for_staff(actor, pk, Permission.EDIT_PATRON)
        data = _body(request, PasswordLinkRequestSerializer) if request.data else {}
        purpose = data.get("purpose") or (
            PasswordLink.Purpose.RESET if credentials.sign_in_state(patron).has_password else PasswordLink.Purpose.SET
        )
        link = credentials.send_link(
            actor=actor, patron=patron, purpose=purpose, base_url=request.build_absolute_uri("/")
        )
        return Response(PasswordLinkSerializer(link).data, status=status.HTTP_201_CREATED)


class InstitutionSignInSerializer(serializers.Serializer[Any]):
    """A library's institution sign-in. ``bind_password`` is write-only: it is never sent back."""

    enabled = serializers.BooleanField(help_text="Patrons covered sign in with the institution's account.")
    server_uris = serializers.ListField(
        child=serializers.CharField(), help_text="ldap:// or ldaps:// addresses, tried in order."
    )
    start_tls = serializers.BooleanField()
    bind_dn = serializers.CharField(allow_blank=True, help_text="The account that searches the directory.")
    bind_password = serializers.CharField(
        write_only=True, allow_blank=True, help_text="Write-only; empty or absent keeps the stored one."
    )
    bind_password_stored = serializers.BooleanField(read_only=True)
    search_base = serializers.CharField(allow_blank=True)
    login_attribute = serializers.CharField(help_text="E.g. uid.")
    id_attribute = serializers.CharField(help_text="E.g. employeeNumber; must equal the patron's Person-ID.")
    extra_filter = serializers.CharField(allow_blank=True)
    timeout_seconds = serializers.IntegerField(help_text="1 to 60.")
    all_patron_types = serializers.BooleanField()
    patron_types = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of patron types.")
    service_name = serializers.CharField(allow_blank=True)
    password_url = serializers.CharField(allow_blank=True, help_text="Where patrons change that password.")


def institution_sign_in_data(library: Library) -> dict[str, Any]:
    current = credentials.institution_settings(library)
    return {
        **{name: getattr(current, name) for name in credentials.INSTITUTION_FIELDS
           if name not in {"bind_password", "patron_types", "server_uris"}},
        "server_uris": current.server_uris.splitlines(),
        "bind_password_stored": bool(current.bind_password),
        "patron_types": sorted(t.pk for t in current.patron_types.all()) if current.pk else [],
    }  # fmt: skip


class LibraryInstitutionSignInView(APIView):
    @extend_schema(
        operation_id="libraries_institution_sign_in_read", summary="The library's institution sign-in (LDAP)",
        responses={200: InstitutionSignInSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, library: str) -> Response:
        found = Library.objects.get(pk=_library_id(request, library, Permission.CONFIGURE_LIBRARY))
        return Response(institution_sign_in_data(found))

    @extend_schema(
        operation_id="libraries_institution_sign_in_update",
        summary="Change the library's institution sign-in; fields not sent keep their value",
        request=InstitutionSignInSerializer, responses={200: InstitutionSignInSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, library: str) -> Response:
        found = Library.objects.get(pk=_library_id(request, library, Permission.CONFIGURE_LIBRARY))
        data = _body(request, InstitutionSignInSerializer)
        credentials.save_institution_sign_in(actor=actor_of(request), library=found, data=data)
        return Response(institution_sign_in_data(found))
