"""Online account updates: the access options, the portal's changes, update requests and their verification.

The only code that changes this app's rows. Each entry point is one transaction with its audit events;
e-mails go on the outbox inside that transaction, so a change that rolls back sends nothing. Patron
records change only through ``patrons.services.update_patron``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError, NotFound, PermissionDenied, Refused, ValidationFailed
from patronage.core.values import flag
from patronage.libraries.access import permissions_by_library
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission
from patronage.notices import kinds as notice_kinds
from patronage.notices import services as notices
from patronage.outbox import services as outbox
from patronage.patrons import services as patron_services
from patronage.patrons import validation
from patronage.patrons.models import Address, Patron, PatronType, Phone
from patronage.patrons.validation import clean_model_fields
from patronage.standing import services as standing
from patronage.standing.rules import Action

from . import rules
from .models import AccessOptions, ChangeMode, PostalCode, UpdateRequest

ADDRESS_FIELDS = patron_services.ADDRESS_FIELDS
PHONE_KINDS = tuple(Phone.Kind.values)
EMAIL_FIELDS = ("primary_email", "alternate_email")
REASON_MAX = 1000
POSTAL_IMPORT_MAX = 200_000
# What each mode option governs, and how a refusal names it.
GROUPS = {
    "address_change": "your address",
    "email_change": "your e-mail addresses",
    "phone_change": "your phone numbers",
}


def phone_validation() -> bool:
    """System level only (the setting ``PATRONAGE_PHONE_VALIDATION``); applied by ``patrons.services``."""
    return validation.phone_validation()


# --- the access options ----------------------------------------------------------------------------------


def _row(library: Library, branch: Branch | None) -> AccessOptions | None:
    return AccessOptions.objects.filter(library=library, branch=branch).first()


def _values(row: AccessOptions | None) -> dict[str, object]:
    return {name: getattr(row, name) for name in rules.OPTION_NAMES} if row is not None else {}


def resolve(library: Library, branch: Branch | None) -> rules.Resolved:
    """The options in force at ``branch`` (its profile, then the library's, then the system defaults)."""
    wanted = Q(branch__isnull=True) | Q(branch=branch) if branch is not None else Q(branch__isnull=True)
    rows = {r.branch_id: r for r in AccessOptions.objects.filter(wanted, library=library)}
    levels: list[rules.Level] = []
    if branch is not None:
        levels.append(rules.Level(f"branch {branch.name}", _values(rows.get(branch.pk))))
    levels.append(rules.Level("library", _values(rows.get(None))))
    return rules.resolve(
        tuple(levels), phone_validation=phone_validation(), branch_name=branch.name if branch is not None else ""
    )


def for_patron(patron: Patron) -> rules.Resolved:
    """A signed-in patron gets the options of their registered branch."""
    return resolve(patron.library, patron.registered_branch)


def connection_branch(library: Library, requested: str | None = None) -> Branch | None:
    """The branch a visitor who is not signed in is connected to.

    The branch named by the request (``?branch=CODE``, the parameter is the setting
    ``PATRONAGE_CONNECTION_BRANCH_PARAM``) when it is one of the library's, else the library's configured
    connection branch, else none (the library's own options apply).
    """
    text = (requested or "").strip()[:32]
    if text:
        found = Branch.objects.filter(library=library, code=text).first()
        if found is not None:
            return found
    row = AccessOptions.objects.filter(library=library, branch__isnull=True).select_related("connection_branch").first()
    return row.connection_branch if row is not None else None


def for_visitor(library: Library, requested: str | None = None) -> rules.Resolved:
    return resolve(library, connection_branch(library, requested))


def offered_opt_outs(library: Library) -> list[notice_kinds.Kind]:
    """The reminder notices this library lets patrons opt out of (set on the notices page, not here)."""
    allowed = notices.settings_for(library).optional_kinds
    return [k for k in notice_kinds.OPTIONAL if k.code in allowed]


def clean_options(library: Library, branch: Branch | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """Values for one profile; "" (or "inherit") means "as the level above". Only keys given are cleaned."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name in rules.FLAG_OPTIONS:
        if name in data:
            text = str(data[name] if data[name] is not None else "").strip().lower()
            if text in ("", "inherit"):
                cleaned[name] = None
            elif text in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                cleaned[name] = flag(text)
            else:
                errors[name] = ["Choose yes, no, or empty to use the level above."]
    for name in rules.MODE_OPTIONS:
        if name in data:
            text = str(data[name] if data[name] is not None else "").strip().lower()
            if text in ("", "inherit"):
                cleaned[name] = ""
            elif text in rules.MODES:
                cleaned[name] = text
            else:
                errors[name] = [f"Choose {', '.join(rules.MODES)}, or empty to use the level above."]
    if "connection_branch" in data:
        text = str(data["connection_branch"] if data["connection_branch"] is not None else "").strip()
        if branch is not None and text:
            errors["connection_branch"] = ["The connection branch is set on the library's options, not a branch's."]
        elif text:
            match = Branch.objects.filter(library=library, code=text).first()
            if match is None and text.isdigit():
                match = Branch.objects.filter(library=library, pk=int(text)).first()
            if match is None:
                errors["connection_branch"] = [
                    f"Unknown branch {text[:40]!r} at {library.name}; choose one from the list."
                ]
            cleaned["connection_branch"] = match
        else:
            cleaned["connection_branch"] = None
    if errors:
        raise ValidationFailed(errors)
    return cleaned


OPTION_FIELDS = (*rules.OPTION_NAMES, "connection_branch")


@transaction.atomic
def save_options(
    *, actor: audit.Actor, library: Library, branch: Branch | None, data: Mapping[str, Any]
) -> AccessOptions:
    """Change the library's options (``branch`` None) or one branch profile; only the keys given change."""
    if branch is not None and branch.library_id != library.pk:
        raise NotFound(f"There is no such branch at {library.name}.")
    unknown = sorted(set(data) - set(OPTION_FIELDS) - {"patron_types"})
    if unknown:
        raise ValidationFailed({k: [f"Unknown option; use {', '.join(OPTION_FIELDS)}, patron_types."] for k in unknown})
    if "patron_types" in data and branch is not None:
        raise FieldError("patron_types", "Which patron types may update online is set for the whole library.")
    cleaned = clean_options(library, branch, {k: v for k, v in data.items() if k != "patron_types"})
    if "patron_types" in data:
        chosen = data["patron_types"]
        set_self_update_types(actor=actor, library=library, type_ids=[chosen] if isinstance(chosen, str) else chosen)
    row = AccessOptions.objects.select_for_update().filter(library=library, branch=branch).first()
    if row is None:
        try:
            with transaction.atomic():
                row = AccessOptions.objects.create(library=library, branch=branch)
        except IntegrityError:  # created by a concurrent save a moment ago
            row = AccessOptions.objects.select_for_update().get(library=library, branch=branch)
    changed = sorted(k for k, v in cleaned.items() if getattr(row, k) != v)
    for key, value in cleaned.items():
        setattr(row, key, value)
    row.updated_at = clock.now()
    row.save()
    audit.record(
        actor, "updates.options_changed", library_id=library.pk, branch_id=branch.pk if branch else None, fields=changed
    )
    return row


@transaction.atomic
def set_self_update_types(*, actor: audit.Actor, library: Library, type_ids: Iterable[object]) -> list[PatronType]:
    """Which patron types may update online: ticks ``PatronType.may_self_update`` (through patrons.services)."""
    chosen = {str(t) for t in type_ids}
    types = list(PatronType.objects.filter(library=library).order_by("name"))
    unknown = chosen - {str(t.pk) for t in types} - {t.code for t in types}
    if unknown:
        raise FieldError("patron_types", f"Unknown patron type {sorted(unknown)[0][:40]!r}; choose from the list.")
    for patron_type in types:
        wanted = str(patron_type.pk) in chosen or patron_type.code in chosen
        if patron_type.may_self_update != wanted:
            patron_services.save_patron_type(
                actor=actor, library=library, patron_type=patron_type, data={"may_self_update": wanted}
            )
    return list(PatronType.objects.filter(library=library).order_by("name"))


# --- postal codes ------------------------------------------------------------------------------------------


def check_postal_code(library: Library, code: str, *, field: str = "postal_code") -> str:
    """The code normalised; refused when the library has postal codes and this is not one of them.

    An empty table means the library checks nothing (it has not imported its codes)."""
    normalised = rules.normalise_postal_code(code)
    if not normalised:
        return normalised
    codes = PostalCode.objects.filter(library=library)
    if codes.exists() and not codes.filter(code=normalised).exists():
        raise FieldError(
            field, f"{normalised[:20]!r} is not a postal code we know for {library.name}; check the code and try again."
        )
    return normalised


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    removed: int = 0
    rows: int = 0


def parse_postal_csv(text: str) -> list[dict[str, str]]:
    """Rows of a postal-code CSV: a header with ``postal_code`` (or ``code``), optional ``city`` and ``region``."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "postal_code" not in header and "code" not in header:
        raise FieldError("file", "The first line must name the columns: postal_code (or code), city, region.")
    rows = []
    for raw in reader:
        row = {str(k).strip().lower(): str(v or "").strip() for k, v in raw.items() if k is not None}
        rows.append(
            {
                "code": row.get("postal_code") or row.get("code", ""),
                "city": row.get("city", ""),
                "region": row.get("region", ""),
            }
        )
    return rows


@transaction.atomic
def import_postal_codes(
    *, actor: audit.Actor, library: Library, rows: Iterable[Mapping[str, Any]], replace: bool = False
) -> ImportResult:
    """Add or update the library's postal codes; with ``replace`` the codes not given are removed.

    All or nothing: one bad row refuses the whole file, naming the row and the fix."""
    errors: dict[str, list[str]] = {}
    wanted: dict[str, dict[str, str]] = {}
    count = 0
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        count += 1
        if count > POSTAL_IMPORT_MAX:
            raise FieldError("file", f"At most {POSTAL_IMPORT_MAX:,} postal codes at once; split the file.")
        code = rules.normalise_postal_code(str(row.get("code") or ""))
        city = str(row.get("city") or "").strip()
        region = str(row.get("region") or "").strip()
        if not code or len(code) > 20:
            errors[f"row {number}"] = ["Give a postal code of 1 to 20 characters in the postal_code column."]
        elif len(city) > 100 or len(region) > 100:
            errors[f"row {number}"] = ["City and region are at most 100 characters each."]
        else:
            wanted[code] = {"city": city, "region": region}
    if errors:
        raise ValidationFailed(dict(list(errors.items())[:50]))
    result = ImportResult(rows=count)
    existing = {p.code: p for p in PostalCode.objects.filter(library=library)}
    new = [PostalCode(library=library, code=c, **v) for c, v in wanted.items() if c not in existing]
    PostalCode.objects.bulk_create(new, batch_size=1000)
    result.created = len(new)
    changed = []
    for code, values in wanted.items():
        known = existing.get(code)
        if known is not None and (known.city, known.region) != (values["city"], values["region"]):
            known.city, known.region = values["city"], values["region"]
            changed.append(known)
    PostalCode.objects.bulk_update(changed, ["city", "region"], batch_size=1000)
    result.updated = len(changed)
    if replace:
        result.removed, _ = PostalCode.objects.filter(library=library).exclude(code__in=list(wanted)).delete()
    audit.record(
        actor, "updates.postal_codes_imported", library_id=library.pk, created=result.created,
        updated=result.updated, removed=result.removed,
    )  # fmt: skip
    return result


# --- what a patron may do ----------------------------------------------------------------------------------


def refusals(patron: Patron) -> list[dict[str, str]]:
    """Why this patron may not update details online (empty: they may)."""
    found: list[dict[str, str]] = []
    if not patron.patron_type.may_self_update:
        found.append(
            {
                "code": "patron_type_may_not_self_update",
                "message": f"Your type of membership ({patron.patron_type.name}) cannot change details online. "
                "Please ask the library staff to change them for you.",
            }
        )
    decision = standing.decide(patron, Action.SELF_UPDATE)
    found.extend({"code": r.code.value, "message": f"{r.patron_message} {r.remedy}".strip()} for r in decision.reasons)
    return found


def current_details(patron: Patron) -> dict[str, Any]:
    """The patron's contact details as the update form and the requests hold them."""
    home = Address.objects.filter(patron=patron, kind=Address.Kind.HOME).first()
    phones = dict(Phone.objects.filter(patron=patron).values_list("kind", "number"))
    details: dict[str, Any] = {name: getattr(patron, name) for name in EMAIL_FIELDS}
    details["notification_method"] = patron.notification_method
    details["phones"] = {kind: phones.get(kind, "") for kind in PHONE_KINDS}
    details["address"] = {f: getattr(home, f) if home is not None else "" for f in ADDRESS_FIELDS}
    for kind in notice_kinds.OPTIONAL:
        details[kind.opt_out_field] = bool(getattr(patron, kind.opt_out_field))
    return details


@dataclass
class Outcome:
    applied: list[str] = field(default_factory=list)  # groups changed at once
    request: UpdateRequest | None = None  # the request created now, waiting for the library


def _clean(
    patron: Patron, options: rules.Resolved, data: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The submitted values cleaned, per group, only where they differ from the record; and every error."""
    library = patron.library
    errors: dict[str, list[str]] = {}
    changed: dict[str, Any] = {}
    if any(name in data for name in EMAIL_FIELDS):
        raw = {name: str(data.get(name, current[name]) or "") for name in EMAIL_FIELDS}
        try:
            emails = clean_model_fields(Patron, raw, EMAIL_FIELDS)
        except ValidationFailed as exc:
            fix = "Enter one e-mail address such as name@example.org, at most 254 characters, or leave it empty."
            errors.update({name: [fix] for name in exc.errors})
        else:
            differing_emails = {n: emails[n] for n in EMAIL_FIELDS if emails[n] != current[n]}
            if differing_emails:
                changed["email_change"] = differing_emails
    if "phones" in data:
        given = data["phones"] or {}
        unknown = sorted(set(given) - set(PHONE_KINDS))
        for kind in unknown:
            errors[f"phone_{kind}"] = [f"Unknown phone kind {kind!r}; use {', '.join(PHONE_KINDS)}."]
        phones: dict[str, str] = {}
        for kind in PHONE_KINDS:
            if kind not in given:
                continue
            text = str(given[kind] or "").strip()
            on_record = current["phones"].get(kind, "")
            if on_record and text == validation.display_phone(on_record, library.country):
                continue  # the number as the page showed it: no change, whatever the setting is now
            # The patrons' own rule (validated and E.164, or kept as typed, by the system setting), so that
            # verifying the request later stores exactly what was accepted now.
            try:
                number = patron_services.clean_phones(library, {kind: text}, validate=options.phone_validation)[kind]
            except ValidationFailed as exc:
                errors.update(exc.errors)
            else:
                phones[kind] = number or ""
        differing = {k: v for k, v in phones.items() if v != current["phones"].get(k, "")}
        if differing:
            changed["phone_change"] = differing
    if "address" in data:
        given_address = {f: str((data["address"] or {}).get(f, "") or "") for f in ADDRESS_FIELDS}
        address: dict[str, Any] = {}
        if any(v.strip() for v in given_address.values()):
            try:
                cleaned = patron_services.clean_addresses([{**given_address, "kind": Address.Kind.HOME}])
                address = {f: cleaned[0].get(f, "") for f in ADDRESS_FIELDS}
            except ValidationFailed as exc:
                errors.update({"address_" + k.rsplit(".", 1)[-1]: v for k, v in exc.errors.items()})
            try:
                code = check_postal_code(library, given_address["postal_code"], field="address_postal_code")
                if address:
                    address["postal_code"] = code
            except FieldError as exc:
                errors.update(exc.errors)
        else:
            address = {f: "" for f in ADDRESS_FIELDS}
        address_ok = address and not errors.keys() & {f"address_{f}" for f in ADDRESS_FIELDS}
        if address_ok and {f: address.get(f) or "" for f in ADDRESS_FIELDS} != current["address"]:
            changed["address_change"] = address
    if "notification_method" in data:
        try:
            method = clean_model_fields(
                Patron, {"notification_method": data["notification_method"]}, ("notification_method",)
            )
        except ValidationFailed as exc:
            errors.update(
                {"notification_method": ["Choose one of the ways to be notified in the list."]} if exc.errors else {}
            )
        else:
            if method["notification_method"] != current["notification_method"]:
                changed["notification_method"] = method["notification_method"]
    offered = {k.opt_out_field for k in offered_opt_outs(library)}
    opt_outs = {name: flag(data[name]) for name in offered if name in data}
    opt_outs = {k: v for k, v in opt_outs.items() if v != current[k]}
    if opt_outs:
        changed["opt_outs"] = opt_outs
    return changed, errors


def _field_of(group: str) -> str:
    return {"address_change": "address_line1", "email_change": "primary_email", "phone_change": "phone_mobile"}.get(
        group, group
    )


def _addresses_with_home(patron: Patron, home: Mapping[str, Any]) -> list[dict[str, Any]]:
    others = [
        {"kind": a.kind, **{f: getattr(a, f) for f in ADDRESS_FIELDS}}
        for a in Address.objects.filter(patron=patron).exclude(kind=Address.Kind.HOME)
    ]
    if any(str(v or "").strip() for v in home.values()):
        others.insert(0, {"kind": Address.Kind.HOME, **home})
    return others


def _apply(actor: audit.Actor, patron: Patron, values: Mapping[str, Any]) -> Patron:
    """Write changed values (the shapes of ``UpdateRequest.new``) through patrons.services."""
    data = {
        k: v for k, v in values.items() if k in EMAIL_FIELDS or k == "notification_method" or k.startswith("opt_out_")
    }
    phones = values.get("phones")
    addresses = _addresses_with_home(patron, values["address"]) if "address" in values else None
    return patron_services.update_patron(actor=actor, patron=patron, data=data, phones=phones, addresses=addresses)


def _recipients(patron: Patron) -> list[str]:
    return [a for a in (patron.primary_email, patron.alternate_email) if a]


def _describe(values: Mapping[str, Any], country: str) -> str:
    lines = []
    for key, value in values.items():
        if key == "address":
            text = ", ".join(str(value.get(f) or "") for f in ADDRESS_FIELDS if value.get(f)) or "(no address)"
            lines.append(f"Address: {text}")
        elif key == "phones":
            lines.extend(
                f"Phone ({kind}): {validation.display_phone(number, country) or '(removed)'}"
                for kind, number in value.items()
            )
        else:
            lines.append(f"{key.replace('_', ' ').capitalize()}: {value or '(removed)'}")
    return "\n".join(lines)


def _queue_submitted_mail(patron: Patron, request: UpdateRequest, options: rules.Resolved) -> None:
    library = patron.library
    addresses = _recipients(patron)
    if options.flag("confirmation_email") and addresses:
        outbox.enqueue(
            kind="update_request_confirmation", to=addresses, library=library, patron_id=patron.pk,
            dedupe_key=f"update_request:{request.pk}:confirmation",
            subject=f"{library.name}: we received your change of contact details",
            text=f"Hello {patron.first_name},\n\nWe received your request to change these details:\n\n"
            f"{_describe(request.new, library.country)}\n\nStaff will check the change soon. Until then you cannot check out items; "
            f"everything else works as before.\n\n{library.name}\n",
        )  # fmt: skip
    branch = request.branch
    if branch.email:
        outbox.enqueue(
            kind="update_request_staff", to=[branch.email], library=library, patron_id=patron.pk,
            dedupe_key=f"update_request:{request.pk}:staff",
            subject=f"Update request {request.pk} waits for verification at {branch.name}",
            text=f"Patron {patron.display_name} (id {patron.pk}) asked to change contact details:\n\n"
            f"{_describe(request.new, library.country)}\n\nVerify or reject it under Update requests in the staff pages. The patron "
            "cannot check out items until then.\n",
        )  # fmt: skip


def _check(
    patron: Patron, options: rules.Resolved, data: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """The changes cleaned, those of them that wait for staff, and every refusal; writes nothing."""
    changed, errors = _clean(patron, options, data, current)
    for group, what in GROUPS.items():
        if group in changed and options.mode(group) == ChangeMode.OFF:
            errors.setdefault(_field_of(group), []).append(
                f"The library does not let you change {what} online; please ask the library staff."
            )
    if "notification_method" in changed and not options.flag("may_change_notification_method"):
        errors.setdefault("notification_method", []).append(
            "The library does not let you change how you are notified online; please ask the library staff."
        )
    requested = {g: v for g, v in changed.items() if g in GROUPS and options.mode(g) == ChangeMode.REQUEST}
    if requested and UpdateRequest.objects.filter(patron=patron, state=UpdateRequest.State.PENDING).exists():
        for group in requested:
            errors.setdefault(_field_of(group), []).append(
                "A change you asked for earlier is still waiting for the library; you can ask for more once "
                "staff have checked it."
            )
    return changed, requested, errors


def check_details(patron: Patron, data: Mapping[str, Any]) -> dict[str, list[str]]:
    """What ``submit_details`` would refuse in ``data``, without writing anything.

    For a face that found a problem of its own in the input (the portal's three-part phone numbers), so
    that the page can show every problem at once."""
    refused = refusals(patron)
    if refused:
        raise Refused("You cannot change your details online.", refused)
    _, _, errors = _check(patron, for_patron(patron), data, current_details(patron))
    return errors


@transaction.atomic
def submit_details(*, actor: audit.Actor, patron: Patron, data: Mapping[str, Any]) -> Outcome:
    """The portal's Update my details: direct changes apply now, the others become one update request.

    ``data`` may hold ``primary_email``, ``alternate_email``, ``notification_method``, ``phones``
    ({kind: number}), ``address`` (the home address's fields) and the offered ``opt_out_*`` flags; only
    values that differ from the record count. Bad input writes nothing and names every field to fix.
    """
    patron = (
        Patron.objects.select_for_update()
        .select_related("library", "patron_type", "registered_branch")
        .get(pk=patron.pk)
    )
    refused = refusals(patron)
    if refused:
        raise Refused("You cannot change your details online.", refused)
    options = for_patron(patron)
    current = current_details(patron)
    changed, requested, errors = _check(patron, options, data, current)
    if errors:
        raise ValidationFailed(errors)
    outcome = Outcome()
    direct: dict[str, Any] = {}
    for group, values in changed.items():
        if group in requested:
            continue
        outcome.applied.append(group)
        if group == "email_change" or group == "opt_outs":
            direct.update(values)
        elif group == "phone_change":
            direct["phones"] = values
        elif group == "address_change":
            direct["address"] = values
        else:
            direct[group] = values
    if direct:
        patron = _apply(actor, patron, direct)
    if requested:
        new: dict[str, Any] = {}
        old: dict[str, Any] = {}
        for group, values in requested.items():
            if group == "email_change":
                new.update(values)
                old.update({n: current[n] for n in values})
            elif group == "phone_change":
                new["phones"] = values
                old["phones"] = {k: current["phones"].get(k, "") for k in values}
            else:
                new["address"] = values
                old["address"] = current["address"]
        request = UpdateRequest.objects.create(
            library=patron.library, patron=patron, branch=patron.registered_branch, old=old, new=new,
            created_at=clock.now(),
        )  # fmt: skip
        audit.record(
            actor, "update_request.submitted", library_id=patron.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, update_request=request.pk, fields=sorted(new),
        )  # fmt: skip
        _queue_submitted_mail(patron, request, options)
        outcome.request = request
    return outcome


# --- staff verification -------------------------------------------------------------------------------------


def request_for_staff(
    actor: audit.Actor, request_id: object, permission: Permission = Permission.EDIT_PATRON
) -> UpdateRequest:
    """One update request for a staff action: another library's (or a missing) one is "not found"."""
    try:
        key = int(str(request_id))
    except ValueError:
        raise NotFound("No such update request.") from None
    member_of = permissions_by_library(actor.user)
    found = (
        UpdateRequest.objects.select_related("patron", "branch", "library")
        .filter(pk=key, library_id__in=[lib for lib, perms in member_of.items() if perms])
        .first()
    )
    if found is None:
        raise NotFound("No such update request.")
    if permission not in member_of[found.library_id]:
        raise PermissionDenied(f"You need the permission {permission.label!r} at this library.")
    return found


def _lock_pending(request: UpdateRequest) -> UpdateRequest:
    locked = UpdateRequest.objects.select_for_update().select_related("patron", "library", "branch").get(pk=request.pk)
    return locked


def _resolve(actor: audit.Actor, request: UpdateRequest, state: str, reason: str = "") -> None:
    request.state = state
    request.reason = reason
    request.resolved_at = clock.now()
    request.resolved_by = actor.account
    request.resolved_by_label = actor.label[:150]
    request.save()


@transaction.atomic
def verify(*, actor: audit.Actor, request: UpdateRequest) -> UpdateRequest:
    """Apply the requested change and lift ``verification_pending``. Verifying it again changes nothing."""
    request = _lock_pending(request)
    if request.state == UpdateRequest.State.VERIFIED:
        return request
    if request.state != UpdateRequest.State.PENDING:
        raise Conflict("This request was rejected already; the patron can send a new one.", code="already_resolved")
    _apply(actor, request.patron, request.new)
    _resolve(actor, request, UpdateRequest.State.VERIFIED)
    audit.record(
        actor, "update_request.verified", library_id=request.library_id, patron_id=request.patron_id,
        patron_label=request.patron.display_name, update_request=request.pk, fields=sorted(request.new),
    )  # fmt: skip
    return request


@transaction.atomic
def reject(*, actor: audit.Actor, request: UpdateRequest, reason: str) -> UpdateRequest:
    """Leave the record as it is, lift ``verification_pending`` and tell the patron why (e-mail and portal)."""
    text = " ".join(str(reason or "").split())
    if not text:
        raise FieldError(
            "reason",
            'Say why the change is rejected; the patron reads it, e.g. "The postal code does not match the street."',
        )
    if len(text) > REASON_MAX:
        raise FieldError("reason", f"Keep the reason to {REASON_MAX} characters at most.")
    request = _lock_pending(request)
    if request.state == UpdateRequest.State.REJECTED and request.reason == text:
        return request
    if request.state != UpdateRequest.State.PENDING:
        raise Conflict("This request was resolved already.", code="already_resolved")
    _resolve(actor, request, UpdateRequest.State.REJECTED, text)
    patron, library = request.patron, request.library
    addresses = _recipients(patron)
    if addresses:
        outbox.enqueue(
            kind="update_request_rejected", to=addresses, library=library, patron_id=patron.pk,
            dedupe_key=f"update_request:{request.pk}:rejected",
            subject=f"{library.name}: your change of contact details was not made",
            text=f"Hello {patron.first_name},\n\nThe library did not make the change you asked for:\n\n"
            f"{_describe(request.new, library.country)}\n\nWhy: {text}\n\nYour details stay as they were. You can ask again in the "
            f"portal or at the library.\n\n{library.name}\n",
        )  # fmt: skip
    audit.record(
        actor, "update_request.rejected", library_id=request.library_id, patron_id=request.patron_id,
        patron_label=patron.display_name, update_request=request.pk, reason=text[:200],
    )  # fmt: skip
    return request
