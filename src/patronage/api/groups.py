"""Patron groups over the REST API: the same services and refusals as the staff pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patronage.core.errors import FieldError
from patronage.groups import queries as group_queries
from patronage.groups import services as group_services
from patronage.groups.access import group_for_staff, groups_for_staff
from patronage.groups.models import PatronGroup
from patronage.libraries.permissions import Permission
from patronage.patrons.access import patron_for_staff

from .idempotency import idempotent
from .views import COMMON_ERRORS, _body, _library_id, actor_of


class GroupMemberSerializer(serializers.Serializer[Any]):
    patron = serializers.IntegerField(source="patron_id")
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    role = serializers.CharField(help_text="'guardian', or empty for an ordinary member.")
    barcode = serializers.CharField(allow_null=True, help_text="The active card, if any.")
    patron_type = serializers.CharField()
    balance = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="The member's own balance.")
    items_out = serializers.IntegerField(help_text="Open checkouts.")
    overdue = serializers.IntegerField(help_text="Open checkouts past their end.")
    standing = serializers.SerializerMethodField(help_text="Codes of the conditions that hold; empty when clear.")

    def get_standing(self, row: group_queries.MemberRow) -> list[str]:
        return [r.code.value for r in row.conditions]


class GroupSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    library = serializers.IntegerField(source="library_id")
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=PatronGroup.Kind.choices)
    member_count = serializers.IntegerField()


class GroupDetailSerializer(GroupSerializer):
    currency = serializers.CharField()
    balance = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="The members' combined balance; information only, never blocks."
    )
    members = GroupMemberSerializer(many=True)


class GroupCreateSerializer(serializers.Serializer[Any]):
    patron = serializers.IntegerField(help_text="The first member.")
    name = serializers.CharField(allow_blank=True)
    kind = serializers.CharField(allow_blank=True, help_text="family (default), household, class or organisation.")


class GroupWriteSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(allow_blank=True)
    kind = serializers.CharField(allow_blank=True)


class MoveSerializer(serializers.Serializer[Any]):
    patron = serializers.IntegerField(required=False, help_text="The patron to move in, by id; or send barcode.")
    barcode = serializers.CharField(required=False, allow_blank=True, help_text="Their current card number.")
    from_group = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="The group you saw the patron in (null: none). If it changed meanwhile: 409 membership_changed.",
    )  # fmt: skip


class RoleSerializer(serializers.Serializer[Any]):
    role = serializers.CharField(allow_blank=True, help_text="'guardian' or empty.")


class CloneSerializer(serializers.Serializer[Any]):
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    barcode = serializers.CharField(required=False, allow_blank=True)


class PatronGroupSerializer(serializers.Serializer[Any]):
    group = GroupDetailSerializer(allow_null=True)


class CloneResultSerializer(serializers.Serializer[Any]):
    patron = serializers.IntegerField(help_text="The new patron's id.")
    group = GroupDetailSerializer()


def _detail(group: PatronGroup) -> dict[str, Any]:
    rows = group_queries.member_rows(group.pk)
    return GroupDetailSerializer(
        {
            "id": group.pk, "library_id": group.library_id, "name": group.name, "kind": group.kind,
            "member_count": len(rows), "currency": rows[0].currency if rows else "",
            "balance": sum((r.balance for r in rows), start=Decimal("0.00")), "members": rows,
        }
    ).data  # fmt: skip


class GroupListView(APIView):
    @extend_schema(
        operation_id="groups_list", summary="Patron groups of your libraries",
        parameters=[OpenApiParameter("library", str, description="Id or code of one of your libraries.")],
        responses={200: GroupSerializer(many=True), **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        library_id = None
        if request.query_params.get("library"):
            library_id = _library_id(request, request.query_params["library"], Permission.VIEW_PATRONS)
        groups = (
            groups_for_staff(actor_of(request), Permission.VIEW_PATRONS, library_id=library_id)
            .annotate(member_count=Count("members"))
            .order_by("library_id", "name", "pk")
        )
        return Response(GroupSerializer(groups, many=True).data)

    @idempotent
    @extend_schema(
        operation_id="groups_create", summary="Start a group with one patron in it",
        request=GroupCreateSerializer, responses={201: GroupDetailSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        data = _body(request, GroupCreateSerializer)
        if "patron" not in data:
            raise FieldError("patron", "Name the patron (id) who is the group's first member.")
        patron = patron_for_staff(actor, data.pop("patron"), Permission.EDIT_PATRON)
        group = group_services.create_group(actor=actor, patron=patron, data=data)
        return Response(_detail(group), status=status.HTTP_201_CREATED)


class GroupDetailView(APIView):
    @extend_schema(
        operation_id="groups_read", summary="A group with every member's own balance, items out and standing",
        responses={200: GroupDetailSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, group_id: int) -> Response:
        return Response(_detail(group_for_staff(actor_of(request), group_id, Permission.VIEW_PATRONS)))

    @extend_schema(
        operation_id="groups_update", summary="Rename a group or change its kind",
        request=GroupWriteSerializer, responses={200: GroupDetailSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, group_id: int) -> Response:
        actor = actor_of(request)
        group = group_for_staff(actor, group_id, Permission.EDIT_PATRON)
        data = _body(request, GroupWriteSerializer)
        return Response(_detail(group_services.update_group(actor=actor, group=group, data=data)))


class GroupMembersView(APIView):
    @idempotent
    @extend_schema(
        operation_id="groups_member_move",
        summary="Move a patron into the group (out of their current group, which goes when left empty)",
        request=MoveSerializer, responses={201: GroupDetailSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, group_id: int) -> Response:
        actor = actor_of(request)
        group = group_for_staff(actor, group_id, Permission.EDIT_PATRON)
        data = _body(request, MoveSerializer)
        if "patron" in data:
            patron = patron_for_staff(actor, data["patron"], Permission.EDIT_PATRON, library_id=group.library_id)
        elif "barcode" in data:
            patron = group_services.find_by_barcode(group, str(data["barcode"]))
        else:
            raise FieldError("barcode", "Send the barcode (or the patron id) of the patron to move in.")
        expected = data.get("from_group", group_services.UNCHECKED)
        group_services.move_patron(actor=actor, group=group, patron=patron, expected_from=expected)
        return Response(_detail(group), status=status.HTTP_201_CREATED)


class GroupMemberView(APIView):
    @extend_schema(
        operation_id="groups_member_role", summary="Give or take the guardian role",
        request=RoleSerializer, responses={200: GroupDetailSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, group_id: int, patron_id: int) -> Response:
        actor = actor_of(request)
        group = group_for_staff(actor, group_id, Permission.EDIT_PATRON)
        patron = patron_for_staff(actor, patron_id, Permission.EDIT_PATRON, library_id=group.library_id)
        data = _body(request, RoleSerializer)
        if "role" not in data:
            raise FieldError("role", "Send role: 'guardian', or empty to take the role.")
        group_services.set_role(actor=actor, group=group, patron=patron, role=str(data["role"]))
        return Response(_detail(group))

    @extend_schema(
        operation_id="groups_member_remove", summary="Remove a member; removing the last one removes the group",
        responses={204: None, **COMMON_ERRORS},
    )  # fmt: skip
    def delete(self, request: Request, group_id: int, patron_id: int) -> Response:
        actor = actor_of(request)
        group = group_for_staff(actor, group_id, Permission.EDIT_PATRON)
        patron = patron_for_staff(actor, patron_id, Permission.EDIT_PATRON, library_id=group.library_id)
        group_services.remove_member(actor=actor, group=group, patron=patron)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PatronGroupView(APIView):
    @extend_schema(
        operation_id="patrons_group", summary="The patron's group (null when in none)",
        responses={200: PatronGroupSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, pk: int) -> Response:
        patron = patron_for_staff(actor_of(request), pk, Permission.VIEW_PATRONS)
        membership = group_queries.membership_of(patron.pk)
        return Response({"group": _detail(membership.group) if membership else None})


class PatronCloneView(APIView):
    @idempotent
    @extend_schema(
        operation_id="patrons_clone",
        summary="A new patron with this one's address, contact and patron type, in one group with them",
        description="Names, birth date and barcode are the new patron's own; no history, debts or blocks are copied.",
        request=CloneSerializer, responses={201: CloneResultSerializer, **COMMON_ERRORS},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        actor = actor_of(request)
        source = patron_for_staff(actor, pk, Permission.EDIT_PATRON)
        data = _body(request, CloneSerializer)
        barcode = data.pop("barcode", None)
        if data.get("birth_date") is None:
            data.pop("birth_date", None)
        for required in ("first_name", "last_name"):
            data.setdefault(required, "")
        clone, group = group_services.clone_patron(actor=actor, source=source, data=data, barcode=barcode or None)
        return Response({"patron": clone.pk, "group": _detail(group)}, status=status.HTTP_201_CREATED)
