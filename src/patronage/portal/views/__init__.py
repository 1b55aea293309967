"""The patron portal: sign in and out, passwords, choosing a checkout center, the dashboard.

Views translate requests into calls of ``patronage.credentials.services`` and ``standing``; the rules
live there. Every page is rendered on the server and works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import get_script_prefix, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from patronage.core import net
from patronage.core.errors import DomainError, FieldError, ValidationFailed
from patronage.credentials import services as credentials
from patronage.libraries import queries as library_queries
from patronage.libraries.models import Branch, Library

from .. import session

CONTRAST_COOKIE = "portal_contrast"
CONTRAST_MAX_AGE = 365 * 24 * 3600
IDENTIFIER_LABEL = "Card number or Person-ID"
FORGOT_ANSWER = (
    "If the card number or Person-ID belongs to an account with an e-mail address, a link to choose a new "
    "password is on its way to that address. The link works once, for 24 hours. No e-mail? Ask the library."
)
ENDED_MESSAGES = {
    session.Ended.IDLE: "You were signed out after {minutes} minutes without activity. Please sign in again.",
    session.Ended.REVOKED: "Your session has ended. Please sign in again.",
}


def client_ip(request: HttpRequest) -> str | None:
    return net.client_ip(request.META)


def field(
    name: str,
    label: str,
    errors: Mapping[str, Sequence[str]],
    *,
    kind: str = "text",
    value: str = "",
    autocomplete: str = "off",
    hint: str = "",
    required: bool = True,
) -> dict[str, Any]:
    """One form field as the templates render it: label, hint and error tied to the input."""
    return {
        "name": name,
        "id": f"f-{name}",
        "label": label,
        "kind": kind,
        "value": value if kind != "password" else "",
        "autocomplete": autocomplete,
        "hint": hint,
        "required": required,
        "errors": list(errors.get(name, [])),
    }


def error_summary(errors: Mapping[str, Sequence[str]], fields: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every error once, linked to its field where the page shows it."""
    by_name = {f["name"]: f for f in fields}
    summary = []
    for name, texts in errors.items():
        bound = by_name.get(name)
        for text in texts:
            summary.append({"href": f"#{bound['id']}" if bound else "", "message": text})
    return summary


@lru_cache(maxsize=1024)
def _library_url(prefix: str, name: str, code: str) -> str:
    # A URL is a function of the URL configuration (fixed for the process), the script prefix and the
    # library's code, so each is reversed once per process: pages name the same few on every request.
    return reverse(name, kwargs={"library": code})


def library_url(name: str, code: str) -> str:
    """``reverse`` of a portal page that takes only the library, once per process."""
    return _library_url(get_script_prefix(), name, code)


class PortalView(View):
    """Base of portal pages: finds the library in the URL and the patron in the session."""

    sign_in_required = True
    library: Library
    portal: credentials.PortalSession | None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        found, centers = library_queries.library_and_centers(str(kwargs.get("library", "")))
        if found is None:
            return render(request, "portal/not_found.html", {"contrast": self.contrast_on()}, status=404)
        self.library = found
        self.portal, ended = session.current(request, found)
        if self.portal is not None:
            # The patron's checkout centers are their library's, and the session is this library's.
            self._centers = centers
        if ended in ENDED_MESSAGES:
            messages.info(request, ENDED_MESSAGES[ended].format(minutes=credentials.idle_minutes()))
        if self.sign_in_required and self.portal is None:
            return HttpResponseRedirect(reverse("portal:sign-in", kwargs={"library": found.code}))
        try:
            return super().dispatch(request, *args, **kwargs)
        except DomainError as exc:
            return self.page("portal/error.html", {"title": "That did not work", "message": exc.message}, exc.status)

    def signed_in(self) -> credentials.PortalSession:
        """The patron's session on a page that requires one (``dispatch`` has redirected otherwise)."""
        if self.portal is None:
            raise RuntimeError("a sign-in-only page ran without a signed-in patron")
        return self.portal

    def centers(self) -> list[Branch]:
        """The patron's checkout centers, read once per request."""
        if not hasattr(self, "_centers"):
            self._centers = credentials.checkout_centers(self.signed_in().patron)
        return self._centers

    def contrast_on(self) -> bool:
        return self.request.COOKIES.get(CONTRAST_COOKIE) == "on"

    def center(self) -> Branch | None:
        if self.portal is None:
            return None
        chosen = self.request.session.get(session.CENTER)
        return next((c for c in self.centers() if c.pk == chosen), None)

    def url(self, name: str, **kwargs: Any) -> str:
        if not kwargs:
            return library_url(name, self.library.code)
        return reverse(name, kwargs={"library": self.library.code, **kwargs})

    def id_url(self, name: str, key: str) -> Callable[[int], str]:
        """The URL of page ``name`` for any object id (its last path segment), reversed once for a whole
        list instead of once per row."""
        head, tail = self.url(name, **{key: 0}).rsplit("/0/", 1)
        return lambda pk: f"{head}/{int(pk)}/{tail}"

    def page(self, template: str, context: Mapping[str, Any] | None = None, status: int = 200) -> HttpResponse:
        patron = self.portal.patron if self.portal else None
        base = {
            "library": self.library,
            "patron": patron,
            "center": self.center(),
            "several_centers": len(self.centers()) > 1 if patron else False,
            "contrast": self.contrast_on(),
            "idle_minutes": credentials.idle_minutes(),
            "links": {
                "dashboard": self.url("portal:dashboard"),
                "center": self.url("portal:center"),
                "help": self.url("portal:help"),
                "contrast": self.url("portal:contrast"),
                "sign_out": self.url("portal:sign-out"),
            },
        }
        return render(self.request, template, {**base, **(context or {})}, status=status)


class LibraryIndexView(View):
    """``/portal/``: straight to the only library, or a choice when the installation holds several."""

    def get(self, request: HttpRequest) -> HttpResponse:
        libraries = list(Library.objects.order_by("name")[:500])
        if len(libraries) == 1:
            return HttpResponseRedirect(reverse("portal:dashboard", kwargs={"library": libraries[0].code}))
        context = {"libraries": libraries, "contrast": request.COOKIES.get(CONTRAST_COOKIE) == "on"}
        return render(request, "portal/libraries.html", context)


class SignInView(PortalView):
    sign_in_required = False

    def _form(self, values: Mapping[str, str], errors: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        return [
            field(
                "identifier", IDENTIFIER_LABEL, errors, value=values.get("identifier", ""), autocomplete="username",
                hint="The number on your library card, or your institution's Person-ID.",
            ),
            field("password", "Password", errors, kind="password", autocomplete="current-password"),
        ]  # fmt: skip

    def _page(
        self,
        values: Mapping[str, str],
        errors: Mapping[str, Sequence[str]],
        status: int = 200,
        reasons: Sequence[Mapping[str, str]] = (),
        notice: str = "",
    ) -> HttpResponse:
        fields = self._form(values, errors)
        context = {"fields": fields, "errors": error_summary(errors, fields), "reasons": reasons, "notice": notice}
        return self.page("portal/sign_in.html", context, status)

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        if self.portal is not None:
            return HttpResponseRedirect(self.url("portal:dashboard"))
        return self._page({}, {})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        values = {"identifier": request.POST.get("identifier", "").strip()[:64]}
        password = request.POST.get("password", "")
        missing: dict[str, list[str]] = {}
        if not values["identifier"]:
            missing["identifier"] = ["Enter your card number or Person-ID."]
        if not password:
            missing["password"] = ["Enter your password."]
        if missing:
            return self._page(values, missing, status=400)
        try:
            patron = credentials.authenticate(self.library, values["identifier"], password, client_ip(request))
        except credentials.SignInFailed as exc:
            return self._page(values, {"identifier": [exc.message]}, status=400)
        except credentials.SignInLocked as exc:
            response = self._page(values, {"identifier": [exc.message]}, status=429)
            response["Retry-After"] = str(exc.retry_after_seconds)
            return response
        except credentials.SignInRefused as exc:
            return self._page(values, {}, status=403, reasons=exc.reasons, notice=exc.message)
        except credentials.DirectoryUnavailable as exc:
            # Not the patron's mistake: no field is wrong and nothing was counted against them.
            return self._page(values, {"": [exc.message]}, status=503)
        session.start(request, patron)
        return HttpResponseRedirect(self.url("portal:center"))


class SignOutView(PortalView):
    http_method_names = ["post"]
    sign_in_required = False

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        session.end(request)
        messages.success(request, "You are signed out.")
        return HttpResponseRedirect(self.url("portal:sign-in"))


class ForgotPasswordView(PortalView):
    sign_in_required = False

    def _page(
        self, value: str, errors: Mapping[str, Sequence[str]], status: int = 200, sent: bool = False
    ) -> HttpResponse:
        fields = [field("identifier", IDENTIFIER_LABEL, errors, value=value, autocomplete="username")]
        context = {"fields": fields, "errors": error_summary(errors, fields), "sent": sent, "answer": FORGOT_ANSWER}
        institution = credentials.institution_sign_in(self.library)
        context["institution_note"] = credentials.institution_password_message(institution) if institution else ""
        return self.page("portal/forgot_password.html", context, status)

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        return self._page("", {})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        identifier = request.POST.get("identifier", "").strip()[:64]
        if not identifier:
            return self._page("", {"identifier": ["Enter your card number or Person-ID."]}, status=400)
        credentials.request_reset(
            self.library, identifier, base_url=request.build_absolute_uri("/"), address=client_ip(request)
        )
        # The same page whether or not the account exists, has an address or just got a link.
        return self._page("", {}, sent=True)


TOKEN_KEY = "portal_password_token"  # noqa: S105 - a session key name


class SetPasswordLinkView(PortalView):
    """The link from the e-mail: keep the token in the session and continue at a URL without it, so the
    token does not linger in the address bar, the history or a Referer header."""

    sign_in_required = False

    def get(self, request: HttpRequest, library: str, token: str) -> HttpResponse:
        request.session[TOKEN_KEY] = token[:100]
        return HttpResponseRedirect(self.url("portal:set-password-form"))


class SetPasswordView(PortalView):
    sign_in_required = False

    def _fields(self, errors: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        return [
            field(
                "password", "New password", errors, kind="password", autocomplete="new-password",
                hint="At least 10 characters; not a common password and not only digits.",
            ),
            field("confirm", "New password again", errors, kind="password", autocomplete="new-password"),
        ]  # fmt: skip

    def _page(self, errors: Mapping[str, Sequence[str]], status: int = 200) -> HttpResponse:
        fields = self._fields(errors)
        return self.page(
            "portal/set_password.html", {"fields": fields, "errors": error_summary(errors, fields)}, status
        )

    def _token(self) -> str:
        token = self.request.session.get(TOKEN_KEY, "")
        return token if isinstance(token, str) else ""

    def _link_problem(self, exc: DomainError) -> HttpResponse:
        context = {"title": "This link cannot be used", "message": exc.message, "offer_reset": True}
        return self.page("portal/error.html", context, status=400)

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        try:
            link = credentials.check_link(self._token())
        except credentials.LinkInvalid as exc:
            return self._link_problem(exc)
        if link.patron.library_id != self.library.pk:
            return self._link_problem(credentials.LinkInvalid("This link belongs to another library's portal."))
        return self._page({})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        password = request.POST.get("password", "")
        confirm = request.POST.get("confirm", "")
        if not password:
            return self._page({"password": ["Enter a new password."]}, status=400)
        if password != confirm:
            return self._page({"confirm": ["The two passwords are not the same; type the same password twice."]}, 400)
        try:
            link = credentials.check_link(self._token())
            if link.patron.library_id != self.library.pk:
                raise credentials.LinkInvalid("This link belongs to another library's portal.")
            credentials.set_password_with_link(self._token(), password, address=client_ip(request))
        except credentials.LinkInvalid as exc:
            return self._link_problem(exc)
        except (ValidationFailed, FieldError) as exc:
            return self._page(exc.errors, status=400)
        request.session.pop(TOKEN_KEY, None)
        session.end(request)
        messages.success(request, "Your password is set. Sign in with it now.")
        return HttpResponseRedirect(self.url("portal:sign-in"))


class CenterView(PortalView):
    """Choose the checkout center: with one, straight in; with several, the patron picks."""

    def _page(self, centers: list[Branch], errors: Mapping[str, Sequence[str]], status: int = 200) -> HttpResponse:
        summary = [
            {"href": f"#center-{centers[0].pk}" if centers else "", "message": m} for m in errors.get("center", [])
        ]
        current = self.center()
        context = {"centers": centers, "errors": summary, "center_errors": errors.get("center", []), "current": current}
        return self.page("portal/center.html", context, status)

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        centers = self.centers()
        if len(centers) <= 1:
            request.session[session.CENTER] = centers[0].pk if centers else None
            return HttpResponseRedirect(self.url("portal:dashboard"))
        return self._page(centers, {})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        centers = self.centers()
        raw = request.POST.get("center", "")
        chosen = next((c for c in centers if str(c.pk) == raw), None)
        if chosen is None:
            return self._page(centers, {"center": ["Choose one of the checkout centers."]}, status=400)
        request.session[session.CENTER] = chosen.pk
        return HttpResponseRedirect(self.url("portal:dashboard"))


class ContrastView(PortalView):
    """Turn high contrast on or off; remembered in a cookie, so it holds before sign-in and after."""

    http_method_names = ["post"]
    sign_in_required = False

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        target = request.POST.get("next", "")
        if not target or not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = self.url("portal:dashboard")
        response = HttpResponseRedirect(target)
        turn_on = request.POST.get("contrast") == "on"
        response.set_cookie(
            CONTRAST_COOKIE, "on" if turn_on else "off", max_age=CONTRAST_MAX_AGE, samesite="Lax", httponly=True,
            secure=request.is_secure(),
        )  # fmt: skip
        return response


class HelpView(PortalView):
    sign_in_required = False

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        return self.page("portal/help.html", {"page": "help"})
