"""The patron's portal sign-in as staff manage it: lift a lock-out, send a set-password link."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from patronage.credentials import services as credentials
from patronage.credentials.models import PasswordLink
from patronage.libraries.permissions import Permission

from .detail import PatronPageView


def _back(pk: int) -> str:
    return reverse("staff:patron-detail", kwargs={"pk": pk}) + "#section-portal-sign-in"


class ClearSignInLockView(PatronPageView):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON)
        if credentials.clear_lock(actor=self.actor, patron=patron):
            messages.success(request, f"{patron.display_name} can sign in to the portal again.")
        else:
            messages.info(request, f"{patron.display_name}'s portal sign-in was not locked; nothing to clear.")
        return HttpResponseRedirect(_back(patron.pk))


class SendPasswordLinkView(PatronPageView):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON)
        purpose = (
            PasswordLink.Purpose.RESET if credentials.sign_in_state(patron).has_password else PasswordLink.Purpose.SET
        )
        link = credentials.send_link(
            actor=self.actor, patron=patron, purpose=purpose, base_url=request.build_absolute_uri("/")
        )
        expires = link.expires_at.astimezone(ZoneInfo(patron.library.time_zone)).strftime("%Y-%m-%d %H:%M")
        messages.success(
            request,
            f"A link to set a portal password is on its way to {patron.primary_email}. It works once, until {expires}.",
        )
        return HttpResponseRedirect(_back(patron.pk))
