"""Which libraries a staff account may act in, and with which permissions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from .models import Library, Membership, Role
from .permissions import Permission

_CACHE_ATTR = "_patronage_permissions"
_KNOWN: dict[str, Permission] = {p.value: p for p in Permission}


def permissions_by_library(user: AbstractBaseUser | AnonymousUser | None) -> dict[int, frozenset[Permission]]:
    """Every library the user belongs to, with the union of the permissions of their roles there.

    Computed once per user object, which is once per request (the authentication middleware loads the user
    afresh for each request, so nothing outlives it), with one hand-written statement.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return {}
    cached: dict[int, frozenset[Permission]] | None = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    result: dict[int, set[Permission]] = {}
    for library_id, codes in _membership_rows(user.pk):
        bucket = result.setdefault(library_id, set())
        if codes:
            # A JSON list of codes: text on both databases (Django reads jsonb as text on PostgreSQL).
            parsed = json.loads(codes) if isinstance(codes, str | bytes) else codes
            bucket.update(_KNOWN[p] for p in parsed if p in _KNOWN)
    frozen = {library_id: frozenset(perms) for library_id, perms in result.items()}
    setattr(user, _CACHE_ATTR, frozen)
    return frozen


@lru_cache(maxsize=8)
def _membership_statement(connection: BaseDatabaseWrapper) -> str:
    """Each membership of a user with the permissions of each of its roles (a row per role; a membership
    without roles gives one row with NULL). What ``Membership.objects.filter(user_id=...).values_list(
    "library_id", "roles__permissions")`` reads, without building that query on every request."""
    quote = connection.ops.quote_name
    roles = Membership._meta.get_field("roles")
    through = roles.remote_field.through._meta  # type: ignore[union-attr]
    return (
        f"SELECT m.{quote('library_id')}, r.{quote('permissions')}"
        f" FROM {quote(Membership._meta.db_table)} m"
        f" LEFT JOIN {quote(through.db_table)} mr ON mr.{quote(roles.m2m_column_name())} = m.{quote('id')}"
        f" LEFT JOIN {quote(Role._meta.db_table)} r ON r.{quote('id')} = mr.{quote(roles.m2m_reverse_name())}"
        f" WHERE m.{quote('user_id')} = %s"
    )


def _membership_rows(user_id: int) -> list[tuple[int, str | bytes | list[str] | None]]:
    connection = connections[router.db_for_read(Membership)]
    with connection.cursor() as cursor:
        cursor.execute(_membership_statement(connection), [user_id])
        return list(cursor.fetchall())


def forget_cached_permissions(user: AbstractBaseUser) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def has_permission(user: AbstractBaseUser | AnonymousUser | None, library_id: int, permission: Permission) -> bool:
    return permission in permissions_by_library(user).get(library_id, frozenset())


def libraries_with(user: AbstractBaseUser | AnonymousUser | None, permission: Permission) -> list[int]:
    return [lib for lib, perms in permissions_by_library(user).items() if permission in perms]


def member_libraries(user: AbstractBaseUser | AnonymousUser | None) -> Iterable[Library]:
    return Library.objects.filter(id__in=list(permissions_by_library(user))).order_by("name")
