"""What a staff account may do where: the membership read every request's permission checks rest on."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patronage.libraries.access import (
    forget_cached_permissions,
    has_permission,
    libraries_with,
    permissions_by_library,
)
from patronage.libraries.models import Membership, Role
from patronage.libraries.permissions import Permission
from tests.factories import make_library, make_staff

pytestmark = pytest.mark.django_db


def test_the_permissions_of_every_role_at_a_library_add_up() -> None:
    north, south = make_library("north"), make_library("south")
    user = make_staff(north, [Permission.VIEW_PATRONS])
    extra = Role.objects.create(library=north, name="cashier", permissions=[Permission.TAKE_PAYMENTS.value])
    Membership.objects.get(user=user, library=north).roles.add(extra)
    Membership.objects.create(user=user, library=south)  # a member without any role yet

    assert permissions_by_library(user) == {
        north.pk: frozenset({Permission.VIEW_PATRONS, Permission.TAKE_PAYMENTS}),
        south.pk: frozenset(),
    }
    assert has_permission(user, north.pk, Permission.TAKE_PAYMENTS)
    assert not has_permission(user, south.pk, Permission.VIEW_PATRONS)
    assert libraries_with(user, Permission.VIEW_PATRONS) == [north.pk]


def test_codes_no_longer_known_grant_nothing() -> None:
    library = make_library()
    user = make_staff(library, [Permission.VIEW_PATRONS])
    Role.objects.filter(library=library).update(permissions=["view_patrons", "launch_rockets"])

    assert permissions_by_library(user) == {library.pk: frozenset({Permission.VIEW_PATRONS})}


def test_strangers_inactive_and_anonymous_accounts_hold_nothing() -> None:
    library = make_library()
    stranger = get_user_model().objects.create_user(username="stranger", password="x-long-enough-2026")
    retired = make_staff(library, [Permission.VIEW_PATRONS])
    retired.is_active = False
    retired.save()

    assert permissions_by_library(stranger) == {}
    assert permissions_by_library(retired) == {}
    assert permissions_by_library(AnonymousUser()) == {}
    assert permissions_by_library(None) == {}


def test_read_once_per_request_and_read_afresh_by_the_next() -> None:
    library = make_library()
    user = make_staff(library, [Permission.VIEW_PATRONS])

    with CaptureQueriesContext(connection) as first:
        permissions_by_library(user)
        has_permission(user, library.pk, Permission.VIEW_PATRONS)
        libraries_with(user, Permission.VIEW_PATRONS)
    assert len(first.captured_queries) == 1

    # A role changed by an administrator counts from the next request (a user object loaded afresh) on.
    Role.objects.filter(library=library).update(permissions=[Permission.ADD_FEES.value])
    assert has_permission(user, library.pk, Permission.VIEW_PATRONS)  # this request's reading
    next_request = get_user_model().objects.get(pk=user.pk)
    assert permissions_by_library(next_request) == {library.pk: frozenset({Permission.ADD_FEES})}
    forget_cached_permissions(user)
    assert not has_permission(user, library.pk, Permission.VIEW_PATRONS)
