"""The only code that changes the catalog: resource types, resources, service status, authorizations.

Keyword-only functions, one transaction and one audit event each. Permissions are the caller's business
(the faces load what they act on through ``resources.access``), as everywhere else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from patronage.core.values import flag
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron
from patronage.patrons.validation import clean_model_fields

from . import queries, rules
from .commitments import commitments
from .models import Authorization, Resource, ResourceType

MAX_BUFFER_MINUTES = 7 * 24 * 60
IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
TYPE_TEXTS = ("name", "description")
TYPE_FLAGS = ("requires_authorization", "visible_in_portal")
TYPE_BUFFERS = ("buffer_before_minutes", "buffer_after_minutes")
RESOURCE_TEXTS = ("name", "description", "condition_notes", "accessories")


def _pk(value: object) -> int | None:
    if hasattr(value, "pk"):
        value = value.pk
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def _date(value: object, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise FieldError(
            field, f"{str(value)[:20]!r} is not a date; write it as YYYY-MM-DD, e.g. 2027-06-30."
        ) from None


def _checkout_centers(library: Library, values: Iterable[object], field: str) -> list[Branch]:
    wanted = [_pk(v) for v in values]
    if any(pk is None for pk in wanted):
        raise FieldError(field, f"Choose the checkout centers from the list of {library.name}'s branches.")
    found = {b.pk: b for b in Branch.objects.filter(library=library, pk__in=wanted)}
    unknown = [pk for pk in wanted if pk not in found]
    if unknown:
        raise FieldError(field, f"Unknown branch at {library.name}; choose the checkout centers from the list.")
    not_lending = sorted(b.name for b in found.values() if not b.is_checkout_center)
    if not_lending:
        raise FieldError(
            field, f"{', '.join(not_lending)} is not a checkout center; mark the branch as one first, or leave it out."
        )
    return sorted(found.values(), key=lambda b: b.pk)


# --- resource types -----------------------------------------------------------------------------


def clean_resource_type(
    library: Library, resource_type: ResourceType | None, data: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Branch] | None]:
    """The values for a type, and its checkout centers (None: unchanged); a key left out keeps its value."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    texts = {f: data[f] for f in TYPE_TEXTS if f in data}
    if resource_type is None:
        texts.setdefault("name", "")
    try:
        values.update(clean_model_fields(ResourceType, texts, TYPE_TEXTS))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    for name in TYPE_FLAGS:
        if name in data:
            values[name] = flag(data[name])
    for name in TYPE_BUFFERS:
        if name in data:
            text = str(data[name] if data[name] is not None else "").strip() or "0"
            if not text.isdigit() or int(text) > MAX_BUFFER_MINUTES:
                errors[name] = [f"Enter whole minutes from 0 to {MAX_BUFFER_MINUTES:,} (a week), e.g. 15."]
            else:
                values[name] = int(text)
    if "parent" in data:
        values["parent"] = None
        if data["parent"] not in (None, ""):
            parent_pk = _pk(data["parent"])
            parent = ResourceType.objects.filter(library=library, pk=parent_pk).first() if parent_pk else None
            if parent is None:
                errors["parent"] = [f"Unknown resource type at {library.name}; choose the parent from the list."]
            elif resource_type is not None and rules.makes_loop(
                resource_type.pk, parent.pk, queries.type_nodes(library.pk)
            ):
                errors["parent"] = ["A type cannot sit under itself or under one of its own subtypes; choose another."]
            else:
                values["parent"] = parent
    centers: list[Branch] | None = None
    if "centers" in data:
        try:
            centers = _checkout_centers(library, data["centers"] or (), "centers")
        except FieldError as exc:
            errors.update(exc.errors)
        else:
            if resource_type is not None:
                kept = {b.pk for b in centers}
                stranded = (
                    Resource.objects.filter(resource_type=resource_type)
                    .exclude(center_id__in=kept)
                    .values_list("center__name", flat=True)
                    .distinct()
                )
                if stranded:
                    errors["centers"] = [
                        f"Resources of this type are lent from {', '.join(sorted(stranded))}; "
                        "move them to another center before taking it off the list."
                    ]
    new_name = values.get("name")
    if new_name and "name" not in errors and "parent" not in errors:
        parent = values.get("parent", resource_type.parent if resource_type else None)
        taken = ResourceType.objects.filter(library=library, parent=parent, name__iexact=new_name)
        if resource_type is not None:
            taken = taken.exclude(pk=resource_type.pk)
        if taken.exists():
            where = f"under {parent.name}" if parent else "at the top level"
            errors["name"] = [f"There is already a type called {new_name!r} {where}; choose another name."]
    if errors:
        raise ValidationFailed(errors)
    return values, centers


@transaction.atomic
def save_resource_type(
    *, actor: audit.Actor, library: Library, resource_type: ResourceType | None = None, data: Mapping[str, Any]
) -> ResourceType:
    """Create a resource type of ``library`` (``resource_type`` None) or change one.

    Changed buffers apply to bookings made from then on; existing bookings keep the span they blocked.
    """
    if resource_type is not None:
        if resource_type.library_id != library.pk:
            raise NotFound(f"There is no such resource type at {library.name}.")
        resource_type = ResourceType.objects.select_for_update().get(pk=resource_type.pk)
    values, centers = clean_resource_type(library, resource_type, data)
    created = resource_type is None
    if resource_type is None:
        resource_type = ResourceType(library=library)
        changed = sorted(values)
    else:
        changed = sorted(name for name, value in values.items() if getattr(resource_type, name) != value)
    for name, value in values.items():
        setattr(resource_type, name, value)
    try:
        with transaction.atomic():
            resource_type.save()
    except IntegrityError:  # a concurrent save took the name between the check and the write
        raise FieldError("name", "There is already a type with this name here; choose another name.") from None
    if centers is not None:
        before = set(resource_type.centers.values_list("pk", flat=True))
        if before != {b.pk for b in centers}:
            resource_type.centers.set(centers)
            changed.append("centers")
    audit.record(
        actor, "resource_type.created" if created else "resource_type.updated", library_id=library.pk,
        resource_type_id=resource_type.pk, name=resource_type.name, fields=changed,
    )  # fmt: skip
    return resource_type


# --- resources ------------------------------------------------------------------------------------


def clean_resource(library: Library, resource: Resource | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """The values for a resource; a key left out keeps its current value."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    texts = {f: data[f] for f in RESOURCE_TEXTS if f in data}
    if resource is None:
        texts.setdefault("name", "")
    try:
        values.update(clean_model_fields(Resource, texts, RESOURCE_TEXTS))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if "identifier" in data or resource is None:
        identifier = str(data.get("identifier") or "").strip()
        if not IDENTIFIER_RE.match(identifier):
            errors["identifier"] = [
                "An identifier is 1 to 64 letters, digits, '.', '_', '/' or '-', starting with a letter or digit, "
                "e.g. CAM-0042."
            ]
        else:
            taken = Resource.objects.filter(library=library, identifier=identifier)
            if resource is not None:
                taken = taken.exclude(pk=resource.pk)
            if taken.exists():
                errors["identifier"] = [f"Another resource of {library.name} has the identifier {identifier}."]
            values["identifier"] = identifier
    if "resource_type" in data or resource is None:
        type_pk = _pk(data.get("resource_type"))
        found_type = ResourceType.objects.filter(library=library, pk=type_pk).first() if type_pk else None
        if found_type is None:
            errors["resource_type"] = [f"Choose the resource type from the list of {library.name}'s types."]
        else:
            values["resource_type"] = found_type
    if "center" in data or resource is None:
        try:
            values["center"] = _checkout_centers(library, [data.get("center")], "center")[0]
        except FieldError as exc:
            errors.update(exc.errors)
    kind = values.get("resource_type", resource.resource_type if resource else None)
    center = values.get("center", resource.center if resource else None)
    if (
        kind is not None
        and center is not None
        and not {"resource_type", "center"} & set(errors)
        and not kind.centers.filter(pk=center.pk).exists()
    ):
        errors["center"] = [
            f"{center.name} does not lend {kind.name}; add it to the type's checkout centers first, "
            "or choose another center."
        ]
    if "contained_in" in data:
        values["contained_in"] = None
        if data["contained_in"] not in (None, ""):
            kit_pk = _pk(data["contained_in"])
            kit = Resource.objects.filter(library=library, pk=kit_pk).first() if kit_pk else None
            containers = dict(Resource.objects.filter(library=library).values_list("pk", "contained_in_id"))
            if kit is None:
                errors["contained_in"] = [f"Unknown resource at {library.name}; choose the kit from the list."]
            elif resource is not None and rules.kit_loop(resource.pk, kit.pk, containers):
                errors["contained_in"] = ["A resource cannot be part of itself or of one of its own parts."]
            elif center is not None and kit.center_id != center.pk:
                errors["contained_in"] = [
                    f"The kit {kit.identifier} is lent from another center; a kit's parts are lent where it is."
                ]
            else:
                values["contained_in"] = kit
    if (
        resource is not None
        and "center" in values
        and values["center"].pk != resource.center_id
        and resource.parts.exists()
    ):
        errors["center"] = ["This kit has parts; take them out or move them together, one center at a time."]
    if errors:
        raise ValidationFailed(errors)
    return values


@transaction.atomic
def save_resource(
    *, actor: audit.Actor, library: Library, resource: Resource | None = None, data: Mapping[str, Any]
) -> Resource:
    """Create a resource of ``library`` (``resource`` None) or change one.

    Moving a resource to another type or center is refused while reservations hold it for later: they
    were checked against its old type and center.
    """
    if resource is not None:
        if resource.library_id != library.pk:
            raise NotFound(f"There is no such resource at {library.name}.")
        resource = Resource.objects.select_for_update().select_related("resource_type", "center").get(pk=resource.pk)
    values = clean_resource(library, resource, data)
    created = resource is None
    if resource is None:
        resource = Resource(library=library)
        changed = sorted(values)
    else:
        changed = sorted(name for name, value in values.items() if getattr(resource, name) != value)
        moved = {"resource_type", "center"} & set(changed)
        if moved:
            held = commitments([resource.pk], clock.now()).get(resource.pk, [])
            if held:
                raise Conflict(
                    f"{len(held)} open reservation(s) hold this resource; cancel or finish them before changing "
                    f"its {' and '.join(sorted(f.replace('_', ' ') for f in moved))}.",
                    code="resource_has_reservations",
                )
    for name, value in values.items():
        setattr(resource, name, value)
    try:
        with transaction.atomic():
            resource.save()
    except IntegrityError:  # a concurrent save took the identifier between the check and the write
        raise FieldError("identifier", "Another resource of this library has this identifier.") from None
    audit.record(
        actor, "resource.created" if created else "resource.updated", library_id=library.pk,
        resource_id=resource.pk, identifier=resource.identifier, fields=changed,
    )  # fmt: skip
    return resource


def _aware(value: object, field: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(field, "Give a date and time such as 2027-03-01T09:00+01:00.") from None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise FieldError(field, "Give a date and time with its time zone, such as 2027-03-01T09:00+01:00.")
    return value


@transaction.atomic
def take_out_of_service(
    *, actor: audit.Actor, resource: Resource, from_: dt.datetime | str | None = None, comment: str = ""
) -> list[int]:
    """Take a resource out of service from ``from_`` (default now). Returns the open reservations it breaks.

    Staff must be able to pull broken equipment at once, so reservations holding it do not stop this;
    they are returned (and audited) so that staff can offer the patrons another resource.
    """
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    if resource.out_of_service_from is not None:
        raise Conflict(
            f"{resource.identifier} is already out of service since {resource.out_of_service_from:%Y-%m-%d %H:%M} UTC;"
            " return it to service first to change the date.",
            code="already_out_of_service",
        )
    start = clock.now() if from_ in (None, "") else _aware(from_, "from")
    text = str(comment or "").strip()
    if len(text) > 500:
        raise FieldError("comment", f"Use at most 500 characters (this has {len(text)}).")
    resource.out_of_service_from = start
    resource.save(update_fields=["out_of_service_from"])
    affected = sorted(set(commitments([resource.pk], start).get(resource.pk, [])))
    audit.record(
        actor, "resource.out_of_service", library_id=resource.library_id, resource_id=resource.pk,
        identifier=resource.identifier, out_from=start.isoformat(), comment=text, affected_reservations=affected,
    )  # fmt: skip
    return affected


@transaction.atomic
def return_to_service(*, actor: audit.Actor, resource: Resource) -> Resource:
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    if resource.out_of_service_from is None:
        raise Conflict(f"{resource.identifier} is in service.", code="already_in_service")
    resource.out_of_service_from = None
    resource.save(update_fields=["out_of_service_from"])
    audit.record(
        actor, "resource.returned_to_service", library_id=resource.library_id, resource_id=resource.pk,
        identifier=resource.identifier,
    )  # fmt: skip
    return resource


# --- authorizations -----------------------------------------------------------------------------


@transaction.atomic
def grant_authorization(
    *, actor: audit.Actor, patron: Patron, resource_type: ResourceType, expires_on: dt.date | str | None = None
) -> Authorization:
    """Authorize the patron for a type (and its subtypes). Granting again renews it with the new expiry."""
    patron = Patron.objects.select_for_update().select_related("library").get(pk=patron.pk)
    if resource_type.library_id != patron.library_id:
        raise FieldError("resource_type", f"Choose a resource type of {patron.library.name}.")
    ends = _date(expires_on, "expires_on")
    if ends is not None and ends < clock.today(patron.library.time_zone):
        raise FieldError("expires_on", "The expiry date has passed; choose today or a later day, or leave it empty.")
    authorization, created = Authorization.objects.update_or_create(
        patron=patron,
        resource_type=resource_type,
        defaults={"granted_at": clock.now(), "granted_by": actor.account, "expires_on": ends},
    )
    audit.record(
        actor, "authorization.granted", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, resource_type_id=resource_type.pk, renewed=not created,
        expires_on=ends.isoformat() if ends else None,
    )  # fmt: skip
    return authorization


@transaction.atomic
def revoke_authorization(*, actor: audit.Actor, patron: Patron, resource_type: ResourceType) -> None:
    """Withdraw an authorization. Reservations already made stay; approval and checkout check again."""
    patron = Patron.objects.select_for_update().get(pk=patron.pk)
    deleted, _ = Authorization.objects.filter(patron=patron, resource_type=resource_type).delete()
    if not deleted:
        raise Conflict(f"The patron holds no authorization for {resource_type.name}.", code="not_authorized")
    audit.record(
        actor, "authorization.revoked", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, resource_type_id=resource_type.pk,
    )  # fmt: skip
