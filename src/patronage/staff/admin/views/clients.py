"""Protocol clients: the external systems (ReShare, self-check machines, add-ons) that ask about patrons.

Administrators of the library make them, change them and reset their secrets; the secret is shown once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import ValidationFailed
from patronage.libraries.models import Branch, Library
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import Charset, Protocol, ProtocolClient, Sip2ExtensionField

from ... import fields
from .base import AdminView, FormPage, checkbox_group

CLIENT_FIELDS = (
    fields.FieldSpec("name", "Name", required=True, help="Which system this is, e.g. ReShare or Self-check kiosk 2."),
    fields.FieldSpec(
        "login", "Login", required=True, autocomplete="off",
        help="What the system sends as its user name (HTTP Basic, SIP2 login, NCIP). Letters, digits, . _ -",
    ),
    fields.FieldSpec(
        "allowed_networks", "Allowed addresses", kind="textarea", required=True,
        help="One address or network per line, e.g. 192.0.2.10 or 198.51.100.0/24. 0.0.0.0/0 and ::/0 allow any.",
    ),
    fields.FieldSpec(
        "charset", "Character set (SIP2)", kind="select", choices=tuple(Charset.choices),
        help="How SIP2 messages are encoded; most self-check machines expect code page 850.",
    ),
    fields.FieldSpec(
        "patron_pin_required", "Patrons must give their PIN (SIP2)", kind="checkbox",
        help="Leave this on for self-check machines: without the patron's right PIN the answer shows no name, "
        "loans or fines, and nothing is checked out, renewed or paid. Turn it off only for a system that checks "
        "its patrons itself and sends no PIN, such as an e-book vendor the library trusts. A wrong PIN is "
        "refused either way.",
    ),
    fields.FieldSpec("enabled", "Enabled", kind="checkbox", help="A disabled client is refused at once."),
)  # fmt: skip
# What the form of a new client starts with: the model's defaults (a PIN required, every extension field).
NEW_CLIENT: dict[str, Any] = {
    "charset": Charset.CP850, "enabled": True, "protocols": [], "ill_loan_days": "28",
    "patron_pin_required": True, "sip2_extension_fields": list(Sip2ExtensionField.values),
}  # fmt: skip
PROTOCOL_HELP = {
    Protocol.REST: "POST /api/v1/ill/validate/: interlibrary-loan patron validation.",
    Protocol.NCIP: "NCIP 2.0 (ReShare's LookupUser, AcceptItem, CheckOutItem, CheckInItem).",
    Protocol.SIP2: "SIP2 over TCP (self-check machines, e-book vendors).",
}
EXTENSION_HELP = {
    Sip2ExtensionField.PA: "E-book vendors use it to end the patron's access on that day.",
    Sip2ExtensionField.PC: "For example adult or student; lets a vendor give patron types different rights.",
    Sip2ExtensionField.XI: "Stays the same when the patron gets a new card, so a vendor keeps their loans "
    "together. Self-check machines do not need it.",
}


def _ill_fields(library: Library) -> tuple[fields.FieldSpec, ...]:
    centers = Branch.objects.filter(library=library, is_checkout_center=True).order_by("name")
    return (
        fields.FieldSpec(
            "ill_center", "Interlibrary-loan checkout center (NCIP)", kind="select",
            choices=(("", "None: NCIP items are not accepted"), *((str(c.pk), c.name) for c in centers)),
            help="Where items arriving through NCIP AcceptItem are held for the patron and checked out.",
        ),
        fields.FieldSpec(
            "ill_loan_days", "Interlibrary-loan period in days (NCIP)", kind="number",
            help="How long a patron keeps an interlibrary item, from 1 to 365 days; 28 when left empty.",
        ),
    )  # fmt: skip


def _values(client: ProtocolClient) -> dict[str, Any]:
    return {
        "name": client.name,
        "login": client.login,
        "allowed_networks": "\n".join(client.allowed_networks),
        "charset": client.charset,
        "enabled": client.enabled,
        "protocols": list(client.protocols),
        "ill_center": str(client.ill_center_id or ""),
        "ill_loan_days": str(client.ill_loan_days),
        "patron_pin_required": client.patron_pin_required,
        "sip2_extension_fields": list(client.sip2_extension_fields),
    }


def _posted(request: HttpRequest, specs: tuple[fields.FieldSpec, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {spec.name: request.POST.get(spec.name, "") for spec in specs}
    values["protocols"] = request.POST.getlist("protocols")
    values["sip2_extension_fields"] = request.POST.getlist("sip2_extension_fields")
    return values


class ClientListView(AdminView):
    tab = "clients"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        context = self.admin_context("Protocol clients") | {
            "clients": clients.clients_of(library),
            "time_zone": library.time_zone,
        }
        return render(request, "staff/admin/clients.html", context)


class ClientFormView(FormPage):
    """New client (no ``client_id``) or editing one of this library's clients."""

    tab = "clients"
    template = "staff/admin/client_form.html"

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return CLIENT_FIELDS + _ill_fields(self.enter())

    def client(self) -> ProtocolClient | None:
        client_id = self.kwargs.get("client_id")
        return None if client_id is None else clients.client_of(self.enter(), client_id)

    def groups(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        chosen = set(values.get("protocols") or [])
        options = [(p.value, p.label, PROTOCOL_HELP[p]) for p in Protocol]
        extension_options = [(f.value, f.label, EXTENSION_HELP[f]) for f in Sip2ExtensionField]
        return [
            checkbox_group("protocols", "Protocols it may use", options, chosen, errors),
            checkbox_group(
                "sip2_extension_fields", "Extra patron fields sent over SIP2 (untick any this client does not need)", extension_options,
                set(values.get("sip2_extension_fields") or []), errors,
            ),
        ]  # fmt: skip

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        client = self.client()
        if client is None:
            title, action, submit = "New protocol client", reverse("staff:admin:client-new"), "Create client"
        else:
            title = f"Protocol client {client.name}"
            action = reverse("staff:admin:client-edit", kwargs={"client_id": client.pk})
            submit = "Save client"
        return self.admin_context(title) | {
            "intro": "The secret is made by Patronage and shown once, when the client is created or its secret "
            "is reset."
            if client is None
            else "",
            "action": action,
            "back_url": reverse("staff:admin:clients"),
            "back_label": "protocol clients",
            "submit": submit,
            "client": client,
        }

    def get(self, request: HttpRequest, client_id: int | None = None) -> HttpResponse:
        client = self.client()
        values = _values(client) if client else dict(NEW_CLIENT)
        return self.render_form(values, {})

    def post(self, request: HttpRequest, client_id: int | None = None) -> HttpResponse:
        library = self.enter()
        client = self.client()
        self.posted = _posted(request, self.specs())
        if client is None:
            try:
                created, secret = clients.create_client(actor=self.actor, library=library, data=self.posted)
            except ValidationFailed as exc:
                return self.render_form(self.posted, exc.errors, status=400)
            return _secret_page(self, created, secret, "created")
        try:
            clients.update_client(actor=self.actor, client=client, data=self.posted)
        except ValidationFailed as exc:
            return self.render_form(self.posted, exc.errors, status=400)
        messages.success(request, f"The protocol client {self.posted['name']} is saved.")
        return HttpResponseRedirect(reverse("staff:admin:clients"))


def _secret_page(view: AdminView, client: ProtocolClient, secret: str, what: str) -> HttpResponse:
    context = view.admin_context(f"The secret of {client.name}") | {"client": client, "secret": secret, "what": what}
    response = render(view.request, "staff/admin/client_secret.html", context)
    # The secret is in this response only: not cached, not kept in the session.
    response["Cache-Control"] = "no-store"
    return response


class ClientSecretResetView(AdminView):
    """Asks to confirm, then makes a new secret (the old one stops working) and shows it once."""

    tab = "clients"

    def get(self, request: HttpRequest, client_id: int) -> HttpResponse:
        client = clients.client_of(self.enter(), client_id)
        context = self.admin_context(f"Reset the secret of {client.name}") | {"client": client}
        return render(request, "staff/admin/client_reset.html", context)

    def post(self, request: HttpRequest, client_id: int) -> HttpResponse:
        client = clients.client_of(self.enter(), client_id)
        if request.POST.get("confirm") != "yes":
            return HttpResponseRedirect(reverse("staff:admin:client-edit", kwargs={"client_id": client.pk}))
        secret = clients.reset_secret(actor=self.actor, client=client)
        return _secret_page(self, client, secret, "reset")
