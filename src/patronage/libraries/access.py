"""Which libraries a staff account may act in, and with which permissions."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from .models import Library, Membership
from .permissions import Permission

_CACHE_ATTR = "_patronage_permissions"


def permissions_by_library(user: AbstractBaseUser | AnonymousUser | None) -> dict[int, frozenset[Permission]]:
    """Every library the user belongs to, with the union of the permissions of their roles there.

    Computed once per user object (one request) with a single query.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return {}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    result: dict[int, set[Permission]] = {}
    known = {p.value for p in Permission}
    rows = Membership.objects.filter(user_id=user.pk).values_list("library_id", "roles__permissions")
    for library_id, perms in rows:
        bucket = result.setdefault(library_id, set())
        bucket.update(Permission(p) for p in (perms or []) if p in known)
    frozen = {library_id: frozenset(perms) for library_id, perms in result.items()}
    setattr(user, _CACHE_ATTR, frozen)
    return frozen


def forget_cached_permissions(user: AbstractBaseUser) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def has_permission(user: AbstractBaseUser | AnonymousUser | None, library_id: int, permission: Permission) -> bool:
    return permission in permissions_by_library(user).get(library_id, frozenset())


def libraries_with(user: AbstractBaseUser | AnonymousUser | None, permission: Permission) -> list[int]:
    return [lib for lib, perms in permissions_by_library(user).items() if permission in perms]


def member_libraries(user: AbstractBaseUser | AnonymousUser | None) -> Iterable[Library]:
    return Library.objects.filter(id__in=list(permissions_by_library(user))).order_by("name")
