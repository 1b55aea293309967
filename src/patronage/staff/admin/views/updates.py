"""Patron access options (Administration): what patrons may change online, per branch profile, and the
library's postal codes. The options resolve branch → library → system defaults; the page shows each value
in force and where it comes from. Rules live in ``patronage.updates.services``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import FieldError, NotFound, ValidationFailed
from patronage.libraries.models import Branch
from patronage.patrons.models import PatronType
from patronage.updates import rules, services
from patronage.updates.models import AccessOptions, ChangeMode, PostalCode

from ... import fields
from .base import AdminView, FormPage, checkbox_group

POSTAL_UPLOAD_MAX_BYTES = 5 * 1024 * 1024
FLAG_CHOICES: fields.Choices = (("", "As the level above"), ("1", "Yes"), ("0", "No"))
MODE_CHOICES: fields.Choices = (("", "As the level above"), *ChangeMode.choices)


def _specs(branch: Branch | None) -> tuple[fields.FieldSpec, ...]:
    specs = [
        fields.FieldSpec(
            "may_change_notification_method", rules.LABELS["may_change_notification_method"], kind="select",
            choices=FLAG_CHOICES, help="Never places a verification block.",
        ),
        fields.FieldSpec(
            "confirmation_email", rules.LABELS["confirmation_email"], kind="select", choices=FLAG_CHOICES,
            help="One message to the primary and alternate addresses when a change request is sent; none when "
            "the patron has no e-mail address.",
        ),
        fields.FieldSpec(
            "address_change", rules.LABELS["address_change"], kind="select", choices=MODE_CHOICES,
            help="A change request blocks checkouts until staff verify it. Postal codes are checked in every mode.",
        ),
        fields.FieldSpec("email_change", rules.LABELS["email_change"], kind="select", choices=MODE_CHOICES),
        fields.FieldSpec("phone_change", rules.LABELS["phone_change"], kind="select", choices=MODE_CHOICES),
    ]  # fmt: skip
    if branch is None:
        specs.append(
            fields.FieldSpec(
                "connection_branch", "Connection branch", kind="select",
                help="Whose options a visitor who is not signed in sees, unless the address names a branch "
                "(?branch=CODE). Empty: the library's options.",
            )
        )  # fmt: skip
    return tuple(specs)


def _stored(row: AccessOptions | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in rules.FLAG_OPTIONS:
        value = getattr(row, name) if row is not None else None
        values[name] = "" if value is None else ("1" if value else "0")
    for name in rules.MODE_OPTIONS:
        values[name] = getattr(row, name) if row is not None else ""
    values["connection_branch"] = row.connection_branch.code if row is not None and row.connection_branch else ""
    return values


class AccessOptionsView(FormPage):
    tab = "updates"
    template = "staff/admin/access_options.html"

    def branch(self) -> Branch | None:
        branch_id = self.kwargs.get("branch_id")
        if branch_id is None:
            return None
        found = Branch.objects.filter(library=self.enter(), pk=branch_id).first()
        if found is None:
            raise NotFound("There is no such branch at this library.")
        return found

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return _specs(self.branch())

    def choices(self) -> Mapping[str, fields.Choices]:
        branches = Branch.objects.filter(library=self.enter()).order_by("name")
        return {"connection_branch": (("", "None: the library's options"), *((b.code, b.name) for b in branches))}

    def groups(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        if self.branch() is not None:
            return []
        types = PatronType.objects.filter(library=self.enter()).order_by("name")
        chosen = set(values.get("patron_types") or [str(t.pk) for t in types if t.may_self_update])
        options = [(str(t.pk), t.name, "") for t in types]
        return [checkbox_group("patron_types", "Patron types that may request updates online", options, chosen, errors)]

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        library = self.enter()
        branch = self.branch()
        resolved = services.resolve(library, branch)
        shown = []
        for name in rules.OPTION_NAMES:
            value = resolved.values[name]
            text = ("yes" if value else "no") if name in rules.FLAG_OPTIONS else ChangeMode(str(value)).label
            shown.append({"label": rules.LABELS[name], "value": text, "source": resolved.sources[name]})
        shown.append({
            "label": "Enable phone validation (system level only)", "value": "yes" if resolved.phone_validation else "no",
            "source": "system setting PATRONAGE_PHONE_VALIDATION",
        })  # fmt: skip
        profiles = [
            {"label": "Library (all branches)", "url": reverse("staff:admin:updates"), "current": branch is None}
        ]
        profiles += [
            {"label": b.name, "url": reverse("staff:admin:updates-branch", kwargs={"branch_id": b.pk}),
             "current": branch is not None and b.pk == branch.pk}
            for b in Branch.objects.filter(library=library).order_by("name")
        ]  # fmt: skip
        action = (
            reverse("staff:admin:updates-branch", kwargs={"branch_id": branch.pk})
            if branch is not None
            else reverse("staff:admin:updates")
        )
        return self.admin_context("Patron access options") | {
            "branch": branch, "profiles": profiles, "resolved": shown, "action": action,
            "back_url": reverse("staff:admin:index"), "back_label": "administration",
            "submit": "Save the options of " + (branch.name if branch else "the library"),
            "opt_outs": services.offered_opt_outs(library),
            "postal_count": PostalCode.objects.filter(library=library).count(),
        }  # fmt: skip

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        branch = self.branch()
        row = (
            AccessOptions.objects.filter(library=self.enter(), branch=branch)
            .select_related("connection_branch")
            .first()
        )
        return self.render_form(_stored(row), {})

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        library = self.enter()
        branch = self.branch()
        specs = self.specs()
        posted: dict[str, Any] = {spec.name: request.POST.get(spec.name, "") for spec in specs}
        if branch is None:
            posted["patron_types"] = request.POST.getlist("patron_types")
        self.posted = posted
        services.save_options(actor=self.actor, library=library, branch=branch, data=posted)
        messages.success(request, "Patron access options saved.")
        return HttpResponseRedirect(request.path)


class PostalCodeUploadView(AdminView):
    tab = "updates"

    def post(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        upload = request.FILES.get("file")
        back = reverse("staff:admin:updates")
        try:
            if upload is None:
                raise FieldError(
                    "file", "Choose a CSV file with a postal_code column (and city, region if you have them)."
                )
            if upload.size is not None and upload.size > POSTAL_UPLOAD_MAX_BYTES:
                raise FieldError("file", "The file is larger than 5 MB; split it and upload the parts.")
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise FieldError("file", "Save the file as UTF-8 CSV and upload it again.") from None
            rows = services.parse_postal_csv(text)
            result = services.import_postal_codes(
                actor=self.actor, library=library, rows=rows, replace=request.POST.get("replace") == "1"
            )
        except FieldError as exc:
            return self._refused(exc.errors)
        except ValidationFailed as exc:
            return self._refused(exc.errors)
        messages.success(
            request,
            f"Postal codes imported: {result.created} added, {result.updated} changed, {result.removed} removed.",
        )
        return HttpResponseRedirect(back)

    def _refused(self, errors: Mapping[str, list[str]]) -> HttpResponse:
        summary = [
            {"label": "", "message": f"{k}: {m}" if k != "file" else m, "href": ""}
            for k, ms in errors.items()
            for m in ms
        ]
        context = self.admin_context("Postal codes not imported") | {"errors": summary}
        return render(self.request, "staff/admin/postal_codes_refused.html", context, status=400)
