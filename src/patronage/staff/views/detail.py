"""The patron details window: the standing banner, the tabs, and editing the patron data by section."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core import clock
from patronage.core.errors import NotFound, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries.permissions import Permission
from patronage.patrons import access
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron
from patronage.standing import services as standing_services
from patronage.standing.rules import Condition

from .. import fields
from ..auth import StaffView
from .patrons import reference_choices

READ_PURPOSE = "staff.details"
TABS = (
    ("data", "Patron data", "staff:patron-detail"),
    ("debts", "Debts", "staff:patron-debts"),
    ("blocks", "Blocks", "staff:patron-blocks"),
    ("history", "History", "staff:patron-history"),
    ("ill", "Interlibrary loan", "staff:patron-ill"),
)
SOFT_BLOCK_NOTE = (
    "This is an automatic soft block from the patron's debt. It cannot be lifted by hand: it ends by "
    "itself when payments or waivers bring the balance down to the limit or below."
)


class PatronPageView(StaffView):
    """A page about one patron of the current library; a patron of another library is not found."""

    patron: Patron | None = None

    def load(self, permission: Permission = Permission.VIEW_PATRONS, *, read: bool = False) -> Patron:
        self.patron = access.patron_for_staff(
            self.actor,
            self.kwargs["pk"],
            permission,
            library_id=self.library_id,
            read_purpose=READ_PURPOSE if read else None,
        )
        return self.patron

    def back_url(self) -> str | None:
        if self.patron is None:
            return None
        return reverse("staff:patron-detail", kwargs={"pk": self.patron.pk})

    def patron_context(self, patron: Patron, tab: str) -> dict[str, Any]:
        standing = standing_services.standing(patron)
        conditions = [
            {
                "code": reason.code.value,
                "message": reason.staff_message,
                "remedy": reason.remedy,
                "note": SOFT_BLOCK_NOTE if reason.code == Condition.FINES_OVER_LIMIT else "",
            }
            for reason in standing.conditions
        ]
        tabs = [
            {"key": key, "label": label, "url": reverse(name, kwargs={"pk": patron.pk}), "current": key == tab}
            for key, label, name in TABS
        ]
        return self.base_context() | {
            "section": "patrons",
            "patron": patron,
            "tab": tab,
            "tabs": tabs,
            "conditions": conditions,
            "blocked_by_staff": Condition.BLOCKED_BY_STAFF.value in standing.codes,
            "can": {p.value: self.can(p) for p in Permission},
        }


def section_values(patron: Patron, section: str) -> dict[str, Any]:
    """The current values of one section's form fields."""
    if section == "addresses":
        values: dict[str, Any] = {}
        for address in patron.addresses.all():
            for field in patron_services.ADDRESS_FIELDS:
                values[f"address-{address.kind}-{field}"] = getattr(address, field)
        return values
    if section == "barcodes":
        return {}
    values = {name: getattr(patron, name) for name in patron_services.SECTIONS[section]}
    if section == "contact":
        values.update({f"phone_{phone.kind}": phone.number for phone in patron.phones.all()})
    return values


def section_fields(
    section: str, values: Mapping[str, Any], errors: Mapping[str, list[str]], library_id: int
) -> list[dict[str, Any]]:
    """The form of one section as fieldsets (addresses have one per kind)."""
    if section == "identity":
        return [{"legend": "", "fields": fields.bind(fields.IDENTITY, values, errors)}]
    if section == "contact":
        return [
            {"legend": "E-mail and notices", "fields": fields.bind(fields.CONTACT, values, errors)},
            {"legend": "Phones", "fields": fields.bind(fields.PHONES, values, errors)},
        ]
    if section == "membership":
        choices = reference_choices(library_id)
        return [{"legend": "", "fields": fields.bind(fields.MEMBERSHIP, values, errors, choices=choices)}]
    if section == "notes":
        return [{"legend": "", "fields": fields.bind(fields.NOTES, values, errors)}]
    if section == "addresses":
        return [
            {
                "legend": f"{label} address",
                "fields": fields.bind(fields.ADDRESS, values, errors, prefix=f"address-{kind}-"),
            }
            for kind, label in fields.ADDRESS_KINDS
        ]
    return [{"legend": "", "fields": fields.bind(fields.NEW_BARCODE, values, errors)}]


class PatronFormView(PatronPageView):
    """A patron page with a form: invalid input shows ``_page`` again with what was posted and the errors."""

    posted: dict[str, str] | None = None

    def _page(
        self, patron: Patron, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200
    ) -> HttpResponse:
        raise NotImplementedError

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        patron, posted = self.patron, self.posted
        if patron is None or posted is None:
            return None
        return lambda errors: self._page(patron, posted, errors, status=400)


class PatronDataView(PatronPageView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(read=True)
        context = self.patron_context(patron, "data") | {
            "phones": list(patron.phones.all()),
            "addresses": list(patron.addresses.all()),
            "barcodes": list(patron.barcodes.all()),
            "section_titles": fields.SECTION_TITLES,
        }
        return render(request, "staff/patron/data.html", context)


class PatronBlocksView(PatronPageView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(read=True)
        context = self.patron_context(patron, "blocks") | {"blocks": list(patron.blocks.all()), "now": clock.now()}
        return render(request, "staff/patron/blocks.html", context)


class PatronHistoryView(PatronPageView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(read=True)
        events = AuditEvent.objects.filter(patron_id=patron.pk).order_by("-at", "-id")
        page = Paginator(events, 50).get_page(request.GET.get("page"))
        context = self.patron_context(patron, "history") | {"page": page}
        return render(request, "staff/patron/history.html", context)


class PatronEditSectionView(PatronFormView):
    @staticmethod
    def _check(section: str) -> None:
        if section not in fields.SECTION_TITLES:
            raise NotFound("There is no such section of the patron data.")

    def _page(
        self, patron: Patron, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200
    ) -> HttpResponse:
        section = self.kwargs["section"]
        fieldsets = section_fields(section, values, errors, patron.library_id)
        context = self.patron_context(patron, "data") | {
            "edit_section": section,
            "edit_title": fields.SECTION_TITLES[section],
            "fieldsets": fieldsets,
            "errors": fields.error_summary(errors, [f for fs in fieldsets for f in fs["fields"]]),
            "barcodes": list(patron.barcodes.all()) if section == "barcodes" else [],
        }
        return render(self.request, "staff/patron/edit_section.html", context, status=status)

    def get(self, request: HttpRequest, pk: int, section: str) -> HttpResponse:
        self._check(section)
        patron = self.load(Permission.EDIT_PATRON, read=True)
        return self._page(patron, section_values(patron, section), {})

    def post(self, request: HttpRequest, pk: int, section: str) -> HttpResponse:
        self._check(section)
        patron = self.load(Permission.EDIT_PATRON)
        self.posted = {key: request.POST.get(key, "") for key in request.POST if key != "csrfmiddlewaretoken"}
        self._save(patron, section, self.posted)
        messages.success(request, f"{fields.SECTION_TITLES[section]} saved.")
        return HttpResponseRedirect(reverse("staff:patron-detail", kwargs={"pk": patron.pk}) + f"#section-{section}")

    def _save(self, patron: Patron, section: str, posted: Mapping[str, str]) -> None:
        if section in ("identity", "membership", "notes"):
            data = {name: posted.get(name, "") for name in patron_services.SECTIONS[section]}
            if section == "membership":
                # An unticked checkbox is not sent at all; absent means "no signature on file".
                data["signature_on_file"] = "1" if posted.get("signature_on_file") else ""
                data["keep_lending_history"] = "1" if posted.get("keep_lending_history") else ""
            patron_services.update_section(actor=self.actor, patron=patron, section=section, data=data)
        elif section == "contact":
            data = {name: posted.get(name, "") for name in patron_services.SECTIONS["contact"]}
            phones = {kind: posted.get(f"phone_{kind}", "") for kind in patron_services.PHONE_KINDS}
            # Validate both halves before writing either, so a bad phone leaves the e-mail unchanged too.
            errors: dict[str, list[str]] = {}
            for check in (
                lambda: patron_services.clean_section(patron.library, "contact", data),
                lambda: patron_services.clean_phones(patron.library, phones),
            ):
                try:
                    check()
                except ValidationFailed as exc:
                    errors.update(exc.errors)
            if errors:
                raise ValidationFailed(errors)
            with transaction.atomic():
                patron_services.update_section(actor=self.actor, patron=patron, section="contact", data=data)
                patron_services.set_phones(actor=self.actor, patron=patron, phones=phones)
        elif section == "addresses":
            kinds = [kind for kind, _ in fields.ADDRESS_KINDS]
            addresses = [
                {"kind": kind, **{f: posted.get(f"address-{kind}-{f}", "") for f in patron_services.ADDRESS_FIELDS}}
                for kind in kinds
            ]
            try:
                patron_services.set_addresses(actor=self.actor, patron=patron, addresses=addresses)
            except ValidationFailed as exc:
                raise ValidationFailed(_address_errors(exc.errors, kinds)) from None
        else:
            patron_services.issue_barcode(actor=self.actor, patron=patron, number=posted.get("barcode", ""))


def _address_errors(errors: Mapping[str, list[str]], kinds: list[str]) -> dict[str, list[str]]:
    """The service names address fields by position ("addresses.1.city"); the form names them by kind."""
    renamed: dict[str, list[str]] = {}
    for key, messages_ in errors.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "addresses" and parts[1].isdigit() and int(parts[1]) < len(kinds):
            renamed[f"address-{kinds[int(parts[1])]}-{parts[2]}"] = messages_
        else:
            renamed[key] = messages_
    return renamed
