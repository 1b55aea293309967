"""What every staff page knows about the person using it: who, from where, at which library."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import SimpleTemplateResponse
from django.utils import timezone
from django.views import View

from patronage.core import net
from patronage.core.audit import Actor
from patronage.core.errors import DomainError, PermissionDenied
from patronage.core.models import AuditEvent
from patronage.libraries.access import permissions_by_library
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission

from .errors import handle_domain_error

SESSION_LIBRARY = "staff_library_id"


def client_ip(request: HttpRequest) -> str | None:
    return net.client_ip(request.META)


def actor_for(request: HttpRequest) -> Actor:
    return Actor(user=request.user, channel=AuditEvent.Channel.STAFF, source_ip=client_ip(request))


def current_library(request: HttpRequest) -> Library | None:
    """The library the staff member works in now: chosen in the session, else their only one."""
    member_of = permissions_by_library(request.user)
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
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.actor = actor_for(request)
        self.library = current_library(request)
        perms = permissions_by_library(request.user)
        self.permissions = perms.get(self.library.pk, frozenset()) if self.library else frozenset()
        # Times on staff pages are the library's wall-clock times, whichever view and template show them.
        # A template response is rendered here, while the library's zone is still the current one.
        with timezone.override(ZoneInfo(self.library.time_zone) if self.library else None):
            try:
                response = super().dispatch(request, *args, **kwargs)
            except DomainError as exc:
                response = handle_domain_error(
                    request, exc, context=self.base_context(), invalid=self.invalid_handler(), back_url=self.back_url()
                )
            if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                response.render()
        return response

    @property
    def library_id(self) -> int:
        # -1 matches no library: a staff account without any membership sees nothing.
        return self.library.pk if self.library else -1

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        """Refuse the request (403) unless the user holds ``permission`` at the current library."""
        if not self.can(permission):
            where = self.library.name if self.library else "any library"
            raise PermissionDenied(f"You need the permission {permission.label!r} at {where} to do this.")

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        """Views with a form return a callable that re-renders it with field errors (status 400)."""
        return None

    def back_url(self) -> str | None:
        """Where to send the user with a message when the action conflicts with the current state."""
        return None

    def base_context(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "perms_here": {p.value for p in self.permissions},
            "member_libraries": list(
                Library.objects.filter(pk__in=list(permissions_by_library(self.request.user))).order_by("name")
            ),
        }
