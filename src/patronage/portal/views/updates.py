"""Update my details: the patron changes address, e-mail, phones, notification method and notice opt-outs.

What may change, and whether a change applies at once or waits for staff, is the patron access options of
the patron's registered branch (``updates.services.for_patron``); a visitor who is not signed in sees the
options of the connection branch. Every rule lives in ``patronage.updates.services``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from patronage.core import audit
from patronage.core.errors import FieldError, Refused, ValidationFailed
from patronage.patrons import validation
from patronage.patrons.models import Patron, Phone
from patronage.updates import queries, rules, services
from patronage.updates.models import ChangeMode, UpdateRequest

from . import PortalView, client_ip, error_summary, field

ADDRESS_LABELS = (
    ("line1", "Street address", "street-address"),
    ("line2", "Address line 2", "address-line2"),
    ("city", "City", "address-level2"),
    ("region", "State or region", "address-level1"),
    ("postal_code", "Postal code", "postal-code"),
    ("country", "Country code", "country"),
)
MODE_HINTS = {
    ChangeMode.REQUEST: "A change here waits for the library to check it; until then you cannot check out items.",
    ChangeMode.DIRECT: "A change here applies at once.",
}


# The three inputs of a North American number (phone validation on, a library in a NANP country), with the
# autocomplete tokens browsers fill them from.
PART_LABELS = {"area": "Area code", "prefix": "Prefix", "line": "Line number"}
PART_AUTOCOMPLETE = {"area": "tel-area-code", "prefix": "tel-local-prefix", "line": "tel-local-suffix"}


def three_part_entry(library_country: str, options: rules.Resolved) -> bool:
    """Three inputs per phone with validation on in a North American country; else one (seed 003, Mobile PAC)."""
    return options.phone_validation and validation.uses_three_part_entry(library_country)


def _phone_field(
    kind: str, label: str, values: Mapping[str, Any], errors: Mapping[str, Sequence[str]],
    bad_parts: Mapping[str, Sequence[str]], *, three: bool, country: str, validating: bool,
) -> dict[str, Any]:  # fmt: skip
    """One phone as the page renders it: one input, or a fieldset of three tied to the number's errors."""
    name = f"phone_{kind}"
    stored = str(values.get(name, "") or "")
    typed = values.get(f"{name}_parts")
    parts = typed if typed is not None else (validation.nanp_parts(stored) if stored else {})
    if three and parts is not None:
        own = list(errors.get(name, []))
        wrong = set(bad_parts.get(kind, ())) or (set(PART_LABELS) if own else set())
        return {
            "three": True, "name": name, "id": f"f-{name}", "label": f"{label} phone", "errors": own,
            "hint": "The 10 digits of a number in North America, e.g. 202 555 0143. Leave all three empty to remove it.",
            "parts": [
                {"name": f"{name}_{part}", "id": f"f-{name}_{part}", "label": part_label,
                 "value": str(parts.get(part, "")), "size": size, "invalid": part in wrong,
                 "autocomplete": PART_AUTOCOMPLETE[part] if kind == "mobile" else "off"}
                for (part, _, size, _), part_label in zip(validation.NANP_PARTS, PART_LABELS.values(), strict=True)
            ],
        }  # fmt: skip
    shown = values.get(f"{name}_typed", validation.display_phone(stored, country))
    hint = "As you dial it, e.g. +1 555 555 0123 or (555) 555-0123." if validating else "As you dial it."
    return {
        "three": False,
        **field(name, f"{label} phone", errors, kind="tel", value=shown,
                autocomplete="tel" if kind == "mobile" else "off", required=False, hint=hint),
    }  # fmt: skip


def read_phones(
    posted: Mapping[str, str], *, three: bool
) -> tuple[dict[str, str], dict[str, dict[str, str]], dict[str, list[str]], dict[str, list[str]]]:
    """The posted phones as one number per kind for the service, composing the three parts where they were
    sent. Also the parts as typed, and the part problems found here: messages per number, parts per kind."""
    phones: dict[str, str] = {}
    typed: dict[str, dict[str, str]] = {}
    errors: dict[str, list[str]] = {}
    bad_parts: dict[str, list[str]] = {}
    for kind in services.PHONE_KINDS:
        names = {part: f"phone_{kind}_{part}" for part in PART_LABELS}
        if three and any(n in posted for n in names.values()):
            typed[kind] = {part: str(posted.get(n, ""))[:16] for part, n in names.items()}
            try:
                phones[kind] = validation.compose_nanp(typed[kind], field=f"phone_{kind}")
            except validation.PhonePartsError as exc:
                errors.update(exc.errors)
                bad_parts[kind] = exc.parts
        else:
            phones[kind] = str(posted.get(f"phone_{kind}", ""))[:64]
    return phones, typed, errors, bad_parts


def _mode_word(mode: str) -> str:
    return {"off": "cannot be changed online", "request": "changes are checked by the library first",
            "direct": "changes apply at once"}[mode]  # fmt: skip


class UpdateDetailsView(PortalView):
    sign_in_required = False

    def _visitor(self) -> HttpResponse:
        param = str(getattr(settings, "PATRONAGE_CONNECTION_BRANCH_PARAM", "branch"))
        branch = services.connection_branch(self.library, self.request.GET.get(param))
        options = services.resolve(self.library, branch)
        rows = [{"label": rules.LABELS[n], "value": _mode_word(options.mode(n))} for n in rules.MODE_OPTIONS]
        rows.append({
            "label": rules.LABELS["may_change_notification_method"],
            "value": "yes" if options.flag("may_change_notification_method") else "no",
        })  # fmt: skip
        context = {"page": "update-details", "visitor": True, "branch": branch, "rows": rows}
        return self.page("portal/update_details.html", context)

    def _fields(
        self, patron: Patron, options: rules.Resolved, values: Mapping[str, Any], errors: Mapping[str, Sequence[str]],
        pending: UpdateRequest | None, bad_parts: Mapping[str, Sequence[str]],
    ) -> dict[str, Any]:  # fmt: skip
        def open_for(group: str) -> bool:
            mode = options.mode(group)
            return mode == ChangeMode.DIRECT or (mode == ChangeMode.REQUEST and pending is None)

        groups: list[dict[str, Any]] = []
        email = [
            field("primary_email", "E-mail address", errors, kind="email", value=values.get("primary_email", ""),
                  autocomplete="email", required=False),
            field("alternate_email", "Alternate e-mail address", errors, kind="email",
                  value=values.get("alternate_email", ""), required=False),
        ]  # fmt: skip
        country = patron.library.country
        three = three_part_entry(country, options)
        phones = [
            _phone_field(kind, label, values, errors, bad_parts, three=three, country=country,
                         validating=options.phone_validation)
            for kind, label in Phone.Kind.choices
        ]  # fmt: skip
        address = [
            field(f"address_{name}", label, errors, value=values.get(f"address_{name}", ""), autocomplete=auto,
                  required=False, hint="Two letters, e.g. US." if name == "country" else "")
            for name, label, auto in ADDRESS_LABELS
        ]  # fmt: skip
        for key, title, fields in (
            ("address_change", "Home address", address),
            ("email_change", "E-mail", email),
            ("phone_change", "Phone numbers", phones),
        ):
            mode = options.mode(key)
            groups.append({
                "key": key, "title": title, "fields": fields, "editable": open_for(key), "mode": mode,
                "hint": MODE_HINTS.get(ChangeMode(mode), ""),
                "waiting": mode == ChangeMode.REQUEST and pending is not None,
            })  # fmt: skip
        method = {
            "id": "f-notification_method", "name": "notification_method",
            "value": values.get("notification_method", ""), "choices": Patron.NotificationMethod.choices,
            "errors": list(errors.get("notification_method", [])),
            "editable": options.flag("may_change_notification_method"),
        }  # fmt: skip
        opt_outs = [
            {"name": k.opt_out_field, "id": f"f-{k.opt_out_field}", "label": f"No “{k.label}” e-mails",
             "checked": bool(values.get(k.opt_out_field))}
            for k in services.offered_opt_outs(patron.library)
        ]  # fmt: skip
        return {"groups": groups, "method": method, "opt_outs": opt_outs}

    def _values(self, patron: Patron) -> dict[str, Any]:
        current = services.current_details(patron)
        values: dict[str, Any] = {n: current[n] for n in ("primary_email", "alternate_email", "notification_method")}
        values.update({f"phone_{k}": v for k, v in current["phones"].items()})
        values.update({f"address_{k}": v for k, v in current["address"].items()})
        values.update({k: v for k, v in current.items() if k.startswith("opt_out_")})
        return values

    def _page(
        self,
        patron: Patron,
        values: Mapping[str, Any],
        errors: Mapping[str, Sequence[str]],
        status: int = 200,
        bad_parts: Mapping[str, Sequence[str]] | None = None,
    ) -> HttpResponse:
        refused = services.refusals(patron)
        options = services.for_patron(patron)
        pending = queries.pending_for(patron)
        latest = queries.latest_for(patron)
        form = self._fields(patron, options, values, errors, pending, bad_parts or {})
        every = [_summary_target(f) for g in form["groups"] for f in g["fields"]] + [form["method"]]
        context = {
            "page": "update-details", "visitor": False, "refused": refused, "pending": pending,
            "pending_lines": _lines(pending.new, patron.library.country) if pending else [],
            "rejected": latest if latest is not None and latest.state == UpdateRequest.State.REJECTED else None,
            "errors": error_summary(errors, every), "branch": patron.registered_branch, **form,
        }  # fmt: skip
        return self.page("portal/update_details.html", context, status)

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        if self.portal is None:
            return self._visitor()
        patron = self.signed_in().patron
        return self._page(patron, self._values(patron), {})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        if self.portal is None:
            return HttpResponseRedirect(self.url("portal:sign-in"))
        patron = self.signed_in().patron
        options = services.for_patron(patron)
        pending = queries.pending_for(patron)
        posted = request.POST
        data: dict[str, Any] = {}
        values = self._values(patron)
        typed: dict[str, dict[str, str]] = {}
        part_errors: dict[str, list[str]] = {}
        bad_parts: dict[str, list[str]] = {}
        # Only what the page offered as editable is read; the rest stays as it is.
        for group in rules.MODE_OPTIONS:
            mode = options.mode(group)
            if mode == ChangeMode.OFF or (mode == ChangeMode.REQUEST and pending is not None):
                continue
            if group == "email_change":
                data.update({n: posted.get(n, "")[:300] for n in services.EMAIL_FIELDS})
            elif group == "phone_change":
                phones, typed, part_errors, bad_parts = read_phones(
                    posted, three=three_part_entry(patron.library.country, options)
                )
                data["phones"] = phones
            else:
                data["address"] = {n: posted.get(f"address_{n}", "")[:300] for n, _, _ in ADDRESS_LABELS}
        if options.flag("may_change_notification_method"):
            data["notification_method"] = posted.get("notification_method", "")[:32]
        for kind in services.offered_opt_outs(patron.library):
            data[kind.opt_out_field] = posted.get(kind.opt_out_field, "") == "1"
        shown = dict(values)
        shown.update({k: v for k, v in data.items() if k not in ("phones", "address")})
        shown.update({f"phone_{k}_typed": v for k, v in data.get("phones", {}).items() if k not in typed})
        shown.update({f"phone_{k}_parts": v for k, v in typed.items()})
        shown.update({f"address_{k}": v for k, v in data.get("address", {}).items()})
        if part_errors:
            # A number typed in three parts is wrong: nothing is written; the page shows every problem at once.
            kept = {**data, "phones": {k: v for k, v in data["phones"].items() if k not in bad_parts}}
            try:
                others = services.check_details(patron, kept)
            except Refused as exc:
                return self._page(patron, shown, {"": [exc.message]}, status=403)
            return self._page(patron, shown, {**others, **part_errors}, status=400, bad_parts=bad_parts)
        try:
            outcome = services.submit_details(
                actor=audit.Actor.patron(patron.pk, client_ip(request)), patron=patron, data=data
            )
        except (ValidationFailed, FieldError) as exc:
            return self._page(patron, shown, exc.errors, status=400, bad_parts=bad_parts)
        except Refused as exc:
            return self._page(patron, shown, {"": [exc.message]}, status=403)
        if outcome.request is not None:
            messages.success(request, "Thank you. Your change is waiting for the library to check it.")
        elif outcome.applied:
            messages.success(request, "Your details are updated.")
        else:
            messages.info(request, "Nothing was changed.")
        return HttpResponseRedirect(self.url("portal:update-details"))


def _summary_target(f: Mapping[str, Any]) -> Mapping[str, Any]:
    """Where the error summary links for a field: a three-part number's first part to fix."""
    if not f.get("three"):
        return f
    first = next((p for p in f["parts"] if p["invalid"]), f["parts"][0])
    return {"name": f["name"], "id": first["id"]}


def _lines(new: Mapping[str, Any], country: str) -> list[str]:
    lines: list[str] = []
    for key, value in new.items():
        if key == "address":
            lines.append("Home address: " + (", ".join(str(v) for v in value.values() if v) or "(removed)"))
        elif key == "phones":
            lines.extend(
                f"{kind.title()} phone: {validation.display_phone(number, country) or '(removed)'}"
                for kind, number in value.items()
            )
        else:
            lines.append(f"{'E-mail' if key == 'primary_email' else 'Alternate e-mail'}: {value or '(removed)'}")
    return lines
