"""What every staff page knows about the person using it: who, from where, at which library."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponseBase
from django.views import View

from patronage.core.audit import Actor
from patronage.core.models import AuditEvent
from patronage.libraries.access import permissions_by_library
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission

SESSION_LIBRARY = "staff_library_id"


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is the peer; behind a proxy, gunicorn's forwarded_allow_ips sets it correctly.
    return request.META.get("REMOTE_ADDR") or None


def actor_for(request: HttpRequest) -> Actor:
    return Actor(user=request.user, channel=AuditEvent.Channel.STAFF, source_ip=client_ip(request))  # type: ignore[arg-type]


def current_library(request: HttpRequest) -> Library | None:
    """The library the staff member works in now: chosen in the session, else their only one."""
    member_of = permissions_by_library(request.user)  # type: ignore[arg-type]
    if not member_of:
        return None
    chosen = request.session.get(SESSION_LIBRARY)
    library_id = chosen if chosen in member_of else min(member_of)
    return Library.objects.filter(pk=library_id).first()


class StaffView(LoginRequiredMixin, View):
    """Base for staff pages: sets ``self.actor``, ``self.library`` and ``self.permissions``."""

    actor: Actor
    library: Library | None
    permissions: frozenset[Permission]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated:
            self.actor = actor_for(request)
            self.library = current_library(request)
            perms = permissions_by_library(request.user)  # type: ignore[arg-type]
            self.permissions = perms.get(self.library.pk, frozenset()) if self.library else frozenset()
        return super().dispatch(request, *args, **kwargs)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def base_context(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "perms_here": {p.value for p in self.permissions},
            "member_libraries": list(
                Library.objects.filter(pk__in=list(permissions_by_library(self.request.user))).order_by("name")  # type: ignore[arg-type]
            ),
        }
