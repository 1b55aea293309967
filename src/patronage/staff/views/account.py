"""Signing in and out, choosing the library to work in, and the landing page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from patronage.core import audit, throttle
from patronage.core.errors import NotFound
from patronage.libraries.access import permissions_by_library
from patronage.libraries.permissions import Permission

from ..auth import SESSION_LIBRARY, StaffView, actor_for, client_ip

SCOPE = "staff"
WRONG_CREDENTIALS = "The username or password is not right. Check both and try again."
LOCKED = (
    "Too many failed sign-in attempts for this account or from this address. "
    "Try again in {minutes} minutes, or ask an administrator to lift the lock."
)


def _locked_message(lock: throttle.Lock) -> str:
    return LOCKED.format(minutes=max(1, round(lock.retry_after_seconds / 60)))


class LoginView(View):
    template = "staff/login.html"

    def _next(self, request: HttpRequest) -> str:
        target = request.POST.get("next") or request.GET.get("next") or ""
        safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
        return target if target and safe else reverse("staff:home")

    def _page(self, request: HttpRequest, *, error: str = "", username: str = "", status: int = 200) -> HttpResponse:
        context = {"error": error, "username": username, "next": self._next(request)}
        return render(request, self.template, context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            return HttpResponseRedirect(self._next(request))
        return self._page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        username = request.POST.get("username", "").strip()[:150]
        password = request.POST.get("password", "")
        if not username or not password:
            return self._page(request, error=WRONG_CREDENTIALS, username=username, status=400)
        keys = throttle.keys_for(username, client_ip(request))
        # A locked account or address is refused before the password is looked at, so guessing
        # cannot go on while the lock stands.
        lock = throttle.current_lock(SCOPE, keys)
        if lock is not None:
            return self._page(request, error=_locked_message(lock), username=username, status=429)
        user = authenticate(request, username=username, password=password)
        if user is None:
            lock = throttle.record_failure(SCOPE, keys)
            if lock is not None:
                return self._page(request, error=_locked_message(lock), username=username, status=429)
            return self._page(request, error=WRONG_CREDENTIALS, username=username, status=400)
        throttle.record_success(SCOPE, username)
        login(request, user)
        audit.record(actor_for(request), "staff.signed_in")
        return HttpResponseRedirect(self._next(request))


class LogoutView(View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            audit.record(actor_for(request), "staff.signed_out")
        logout(request)
        messages.info(request, "You are signed out.")
        return HttpResponseRedirect(reverse("staff:login"))


class SwitchLibraryView(StaffView):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        member_of = permissions_by_library(request.user)
        raw = request.POST.get("library", "")
        library_id = int(raw) if raw.isdigit() else None
        if library_id not in member_of:
            # Same answer for "no such library" and "not yours": nobody learns what exists.
            raise NotFound("You are not a member of that library.")
        request.session[SESSION_LIBRARY] = library_id
        return HttpResponseRedirect(reverse("staff:home"))


class HomeView(StaffView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if self.can(Permission.VIEW_PATRONS):
            return HttpResponseRedirect(reverse("staff:patron-list"))
        context: dict[str, Any] = self.base_context()
        return render(request, "staff/home.html", context)
