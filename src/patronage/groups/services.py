"""The only code that changes groups. Each function is one transaction that locks the patron row first and
then the group rows in id order, so two staff acting on the same patron queue up instead of interleaving."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError, ValidationFailed
from patronage.patrons import services as patron_services
from patronage.patrons.models import Barcode, Patron

from . import rules
from .models import GroupMember, PatronGroup


class Unchecked(enum.Enum):
    """Marker for ``move_patron``: the caller did not say which group it saw the patron in."""

    UNCHECKED = "unchecked"


UNCHECKED = Unchecked.UNCHECKED


class BarcodeRefused(FieldError):
    """A barcode that cannot be moved into a group; ``code`` says why."""

    def __init__(self, code: str, message: str, field: str = "barcode") -> None:
        super().__init__(field, message)
        self.code = code


class AlreadyInGroup(Conflict):
    code = "already_in_group"


class MembershipChanged(Conflict):
    code = "membership_changed"


class GroupGone(Conflict):
    code = "group_gone"


def _lock_patron(patron: Patron | int) -> Patron:
    pk = patron if isinstance(patron, int) else patron.pk
    return Patron.objects.select_for_update(of=("self",)).select_related("library").get(pk=pk)


def _lock_groups(ids: Iterable[int | None]) -> dict[int, PatronGroup]:
    """Lock the groups in id order (the same order in every service, so no two moves deadlock)."""
    wanted = sorted({i for i in ids if i is not None})
    locked = {g.pk: g for g in PatronGroup.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
    return locked


def _membership(patron_id: int) -> GroupMember | None:
    return GroupMember.objects.select_for_update().filter(patron_id=patron_id).first()


def _clean_group(data: Mapping[str, Any], *, partial: bool) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    if "name" in data or not partial:
        name = rules.clean_name(data.get("name"))
        if name is None:
            errors["name"] = [f"Give the group a name of 1 to {rules.NAME_MAX} characters, e.g. 'Lovelace family'."]
        else:
            values["name"] = name
    if "kind" in data or not partial:
        kind = str(data.get("kind") or PatronGroup.Kind.FAMILY).strip()
        if kind not in rules.KINDS:
            errors["kind"] = [f"Choose one of: {', '.join(rules.KINDS)}."]
        else:
            values["kind"] = kind
    if errors:
        raise ValidationFailed(errors)
    return values


def _record(actor: audit.Actor, action: str, patron: Patron, group: PatronGroup | None, **detail: Any) -> None:
    audit.record(
        actor, action, library_id=patron.library_id, patron_id=patron.pk, patron_label=patron.display_name,
        group_id=group.pk if group else None, **detail,
    )  # fmt: skip


def _leave(actor: audit.Actor, patron: Patron, membership: GroupMember, group: PatronGroup, reason: str) -> bool:
    """Drop the membership; a group left without members goes too. True when the group was removed."""
    membership.delete()
    gone = not GroupMember.objects.filter(group_id=group.pk).exists()
    _record(actor, "group.member_removed", patron, group, reason=reason, group_removed=gone)
    if gone:
        group.delete()
    return gone


def _join(patron: Patron, group: PatronGroup, role: str = "") -> GroupMember:
    try:
        with transaction.atomic():
            return GroupMember.objects.create(
                library_id=group.library_id, group=group, patron=patron, role=role, joined_at=clock.now()
            )
    except IntegrityError:  # the constraint is the last guard; the locks should make this unreachable
        raise MembershipChanged("The patron joined another group meanwhile; look again and retry.") from None


@transaction.atomic
def create_group(*, actor: audit.Actor, patron: Patron, data: Mapping[str, Any]) -> PatronGroup:
    """A new group with ``patron`` as its first member. A patron already in a group is refused."""
    values = _clean_group(data, partial=False)
    patron = _lock_patron(patron)
    current = _membership(patron.pk)
    if current is not None:
        raise AlreadyInGroup(
            f"{patron.display_name} is already in the group {current.group.name!r}; "
            "move them from there or remove them first."
        )
    group = PatronGroup.objects.create(library_id=patron.library_id, created_at=clock.now(), **values)
    _join(patron, group)
    _record(actor, "group.created", patron, group, name=group.name, kind=group.kind)
    return group


@transaction.atomic
def update_group(*, actor: audit.Actor, group: PatronGroup, data: Mapping[str, Any]) -> PatronGroup:
    values = _clean_group(data, partial=True)
    locked = _lock_groups([group.pk]).get(group.pk)
    if locked is None:
        raise GroupGone("The group no longer exists: its last member left it.")
    changed = [k for k, v in values.items() if getattr(locked, k) != v]
    for key, value in values.items():
        setattr(locked, key, value)
    if changed:
        locked.save(update_fields=changed)
    audit.record(actor, "group.updated", library_id=locked.library_id, group_id=locked.pk, fields=changed)
    return locked


def find_by_barcode(group: PatronGroup, number: str) -> Patron:
    """The patron a barcode names, for moving into ``group``, or a refusal saying what is wrong.

    An unknown barcode and one of another library get the same answer, so nothing is learned about other
    libraries' cards. An old or deactivated card is refused: ask for the card the patron carries now.
    """
    text = (number or "").strip()
    if not text:
        raise BarcodeRefused("barcode_missing", "Enter, scan or paste the barcode of the patron to move.")
    card = Barcode.objects.filter(library_id=group.library_id, number=text).select_related("patron").first()
    if card is None or card.patron.library_id != group.library_id:
        raise BarcodeRefused(
            "barcode_unknown",
            f"No patron of {group.library.name} has the barcode {text[:64]!r}. Check the number; "
            "cards of other libraries cannot join this library's groups.",
        )
    if not card.is_active:
        raise BarcodeRefused(
            "barcode_inactive",
            f"The card {text[:64]!r} is no longer active (it was replaced or reported lost). "
            "Scan the patron's current card.",
        )
    if card.patron.status != Patron.Status.ACTIVE:
        raise BarcodeRefused(
            "patron_inactive", f"{card.patron.display_name}'s record is inactive; reactivate it before moving it."
        )
    return card.patron


@transaction.atomic
def move_patron(
    *,
    actor: audit.Actor,
    group: PatronGroup,
    patron: Patron,
    expected_from: int | Unchecked | None = UNCHECKED,
) -> GroupMember:
    """Put ``patron`` into ``group``, out of the group they are in (removed when left empty).

    ``expected_from`` is the group the caller saw the patron in (None: in none); when someone else moved
    the patron meanwhile, the move is refused with ``membership_changed`` and nothing changes.
    """
    patron = _lock_patron(patron)
    if patron.library_id != group.library_id:
        raise BarcodeRefused(
            "patron_other_library", "Only patrons of the group's own library can join it.", field="patron"
        )
    current = _membership(patron.pk)
    current_group_id = current.group_id if current else None
    if not isinstance(expected_from, Unchecked) and expected_from != current_group_id:
        raise MembershipChanged(
            f"{patron.display_name} was moved by someone else meanwhile; look at their group again and retry."
        )
    locked = _lock_groups([group.pk, current_group_id])
    target = locked.get(group.pk)
    if target is None:
        raise GroupGone("The group no longer exists: its last member left it.")
    if current is not None and current.group_id == target.pk:
        raise AlreadyInGroup(f"{patron.display_name} is already in this group.")
    if current is not None:
        _leave(actor, patron, current, locked[current.group_id], reason="moved")
    member = _join(patron, target)
    _record(actor, "group.member_added", patron, target, from_group_id=current_group_id)
    return member


@transaction.atomic
def remove_member(*, actor: audit.Actor, group: PatronGroup, patron: Patron) -> bool:
    """Take ``patron`` out of ``group``. True when that removed the group (it was the last member)."""
    patron = _lock_patron(patron)
    current = _membership(patron.pk)
    if current is None or current.group_id != group.pk:
        raise MembershipChanged(f"{patron.display_name} is not in this group (any more).")
    locked = _lock_groups([group.pk])
    return _leave(actor, patron, current, locked[group.pk], reason="removed")


@transaction.atomic
def set_role(*, actor: audit.Actor, group: PatronGroup, patron: Patron, role: str) -> GroupMember:
    """Give (``guardian``) or take (``""``) a member's role."""
    value = (role or "").strip()
    if value not in rules.ROLES:
        raise FieldError("role", "The role is 'guardian', or empty for an ordinary member.")
    patron = _lock_patron(patron)
    current = _membership(patron.pk)
    if current is None or current.group_id != group.pk:
        raise MembershipChanged(f"{patron.display_name} is not in this group (any more).")
    if current.role != value:
        before = current.role
        current.role = value
        current.save(update_fields=["role"])
        _record(actor, "group.role_changed", patron, group, role=value, before=before)
    return current


CLONED_FIELDS = ("patron_type", "registered_branch", "primary_email", "alternate_email", "notification_method")
CLONE_OWN_FIELDS = ("first_name", "last_name", "birth_date")


@transaction.atomic
def clone_patron(
    *, actor: audit.Actor, source: Patron, data: Mapping[str, Any], barcode: str | None = None
) -> tuple[Patron, PatronGroup]:
    """A new patron with ``source``'s address, contact and patron type; names, birth date and barcode are the
    new person's own, and no history is copied. Both end up in one group: ``source``'s, or a new family
    group named after them."""
    source = _lock_patron(source)
    unknown = sorted(set(data) - set(CLONE_OWN_FIELDS))
    if unknown:
        raise FieldError(unknown[0], f"Only {', '.join(CLONE_OWN_FIELDS)} and barcode are the new patron's own.")
    fields: dict[str, Any] = {name: getattr(source, name) for name in CLONED_FIELDS}
    fields["patron_type"] = source.patron_type_id
    fields["registered_branch"] = source.registered_branch_id
    fields.update({k: v for k, v in data.items() if k in CLONE_OWN_FIELDS})
    phones = {phone.kind: phone.number for phone in source.phones.all()}
    address_fields = patron_services.ADDRESS_FIELDS
    addresses = [{"kind": a.kind, **{f: getattr(a, f) for f in address_fields}} for a in source.addresses.all()]
    clone = patron_services.create_patron(
        actor=actor, library=source.library, data=fields, barcode=barcode or None, phones=phones, addresses=addresses
    )
    current = _membership(source.pk)
    if current is None:
        group = PatronGroup.objects.create(
            library_id=source.library_id, name=f"{source.last_name} family"[: rules.NAME_MAX],
            kind=PatronGroup.Kind.FAMILY, created_at=clock.now(),
        )  # fmt: skip
        _join(source, group)
        _record(actor, "group.created", source, group, name=group.name, kind=group.kind)
    else:
        group = _lock_groups([current.group_id])[current.group_id]
    _join(clone, group)
    _record(actor, "group.member_added", clone, group, from_group_id=None)
    _record(actor, "patron.cloned", clone, group, source_patron_id=source.pk)
    return clone, group


def leave_on_deletion(*, actor: audit.Actor, patron: Patron) -> None:
    """Privacy's deletion calls this inside its transaction, with the patron already locked."""
    current = _membership(patron.pk)
    if current is None:
        return
    locked = _lock_groups([current.group_id])
    _leave(actor, patron, current, locked[current.group_id], reason="patron_deleted")
