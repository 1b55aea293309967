"""The only code that changes a library's configuration: its settings, branches, roles and staff.

Every function is keyword-only, runs in one transaction, checks its input (raising ``FieldError`` or
``ValidationFailed`` with what to fix) and records one audit event. Changes to roles and staff lock the
library's row first, so two administrators working at once cannot together leave the library without
an administrator: every such change is checked against the state it produces.

Patron types are configured here too, but their service lives with the patron model
(``patronage.patrons.services.save_patron_type``): this layer may not import from the patron layer above it.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser, User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from patronage.core import audit
from patronage.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.core.values import flag

from .access import permissions_by_library
from .models import Branch, Library, Membership, Role, code_validator, validate_region
from .permissions import DEFAULT_ROLES, Permission

ADMINISTER = Permission.CONFIGURE_LIBRARY


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ISO 4217 currencies whose amounts have two decimal places (funds codes and metals left out).
_TWO_PLACES = _codes(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
    CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL
    HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD
    SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS
    VED VES WST XCD XCG YER ZAR ZMW ZWG
    """
)
# Currencies without minor units that ``core.money`` knows to accept as whole amounts only.
_NO_PLACES = _codes("CLP ISK JPY KRW PYG UGX VND XAF XOF")
# Currencies that ``core.money`` cannot yet store or parse correctly (see docs/decisions, money).
_UNSUPPORTED = {
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), "three decimal places"),
    **dict.fromkeys(_codes("BIF DJF GNF KMF RWF VUV XPF"), "no decimal places"),
}
CURRENCIES = _TWO_PLACES | _NO_PLACES


# --- small checks shared by the services below -------------------------------------------------


class _Errors:
    """Collects every problem of a form so the page shows them all at once."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def catch(self, exc: FieldError | ValidationFailed) -> None:
        for field, messages in exc.errors.items():
            for message in messages:
                self.add(field, message)

    def raise_any(self) -> None:
        if self.by_field:
            raise ValidationFailed(self.by_field)


def _text(errors: _Errors, data: Mapping[str, Any], field: str, *, max_length: int, required: bool) -> str:
    value = str(data.get(field) or "").strip()
    if required and not value:
        errors.add(field, "This field is required.")
    elif len(value) > max_length:
        errors.add(field, f"Keep this to at most {max_length} characters (it has {len(value)}).")
    return value


def _code(errors: _Errors, data: Mapping[str, Any], field: str = "code") -> str:
    value = _text(errors, data, field, max_length=32, required=True)
    if value and len(value) <= 32:
        try:
            code_validator(value)
        except ValidationError:
            errors.add(field, "Use letters, digits, '-' and '_' only, e.g. main-branch.")
    return value


def _email(errors: _Errors, data: Mapping[str, Any], field: str = "email") -> str:
    value = _text(errors, data, field, max_length=254, required=False)
    if value and len(value) <= 254:
        try:
            validate_email(value)
        except ValidationError:
            errors.add(field, f"{value[:60]!r} is not an e-mail address; check it, e.g. desk@library.example.org.")
    return value


def clean_currency(value: object, *, field: str = "currency") -> str:
    code = str(value or "").strip().upper()
    if not code:
        raise FieldError(field, "Enter the currency as a three-letter ISO 4217 code, e.g. USD or EUR.")
    if code in _UNSUPPORTED:
        raise FieldError(
            field,
            f"{code} amounts have {_UNSUPPORTED[code]}, which Patronage does not support yet; "
            "choose a currency with two decimal places.",
        )
    if code not in CURRENCIES:
        raise FieldError(
            field, f"{code[:12]!r} is not an ISO 4217 currency code; use three letters such as USD or EUR."
        )
    return code


@lru_cache(maxsize=1)
def _time_zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def clean_time_zone(value: object, *, field: str = "time_zone") -> str:
    text = str(value or "").strip()
    if not text:
        raise FieldError(field, "Enter the library's time zone, e.g. America/New_York or Europe/Oslo.")
    name = _time_zones().get(text.lower())
    if name is None:
        raise FieldError(
            field, f"{text[:64]!r} is not a time zone name; use one such as America/New_York or Europe/Oslo."
        )
    return name


def clean_country(value: object, *, field: str = "country") -> str:
    code = str(value or "").strip().upper()
    if not code:
        raise FieldError(field, "Enter the country as a two-letter ISO 3166 code, e.g. US or NO.")
    try:
        validate_region(code)
    except ValidationError:
        raise FieldError(
            field, f"{code[:12]!r} is not a two-letter country code; use one such as US, GB or NO."
        ) from None
    return code


RETENTION_DAYS_MAX = 3650


def clean_retention_days(value: object, *, field: str = "lending_history_retention_days") -> int | None:
    """The lending history retention period: 1 to 3650 whole days, or empty for "keep forever"."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= RETENTION_DAYS_MAX:
        raise FieldError(
            field,
            f"Enter a whole number of days from 1 to {RETENTION_DAYS_MAX:,}, e.g. 365, "
            "or leave it empty to keep lending history forever.",
        )
    return int(text)


def _lock(library: Library) -> Library:
    """Re-read the library under a row lock; configuration changes at one library queue up."""
    return Library.objects.select_for_update().get(pk=library.pk)


def _own(obj: Branch | Role | Membership | None, library: Library) -> None:
    # Views load objects filtered by the library already; this keeps other callers honest too.
    if obj is not None and obj.library_id != library.pk:
        raise NotFound(f"There is no such {type(obj).__name__.lower()} at {library.name}.")


def _changed(obj: object, values: Mapping[str, Any]) -> list[str]:
    return sorted(name for name, value in values.items() if getattr(obj, name) != value)


# --- library settings and branches -------------------------------------------------------------


@transaction.atomic
def save_library(*, actor: audit.Actor, library: Library, data: Mapping[str, Any]) -> Library:
    """Change the library's name, currency, time zone and country (its code stays as it is), and its lending
    history retention period when ``data`` has one (an empty value: keep forever)."""
    library = _lock(library)
    errors = _Errors()
    values: dict[str, Any] = {"name": _text(errors, data, "name", max_length=200, required=True)}
    for field, clean in (("currency", clean_currency), ("time_zone", clean_time_zone), ("country", clean_country)):
        try:
            values[field] = clean(data.get(field))
        except FieldError as exc:
            errors.catch(exc)
    if "lending_history_retention_days" in data:
        try:
            values["lending_history_retention_days"] = clean_retention_days(data["lending_history_retention_days"])
        except FieldError as exc:
            errors.catch(exc)
    errors.raise_any()
    changed = _changed(library, values)
    for name, value in values.items():
        setattr(library, name, value)
    library.save(update_fields=list(values))
    audit.record(actor, "library.updated", library_id=library.pk, fields=changed)
    return library


def _clean_branch(library: Library, branch: Branch | None, data: Mapping[str, Any]) -> dict[str, Any]:
    errors = _Errors()
    values = {
        "code": _code(errors, data),
        "name": _text(errors, data, "name", max_length=200, required=True),
        "email": _email(errors, data),
        "is_checkout_center": flag(data.get("is_checkout_center")),
    }
    taken = Branch.objects.filter(library=library, code=values["code"])
    if branch is not None:
        taken = taken.exclude(pk=branch.pk)
    if values["code"] and taken.exists():
        errors.add("code", f"Another branch of {library.name} has the code {values['code']!r}; choose another.")
    errors.raise_any()
    return values


@transaction.atomic
def save_branch(*, actor: audit.Actor, library: Library, branch: Branch | None, data: Mapping[str, Any]) -> Branch:
    """Create a branch of ``library`` (``branch`` None) or change one."""
    _own(branch, library)
    values = _clean_branch(library, branch, data)
    created = branch is None
    if branch is None:
        branch = Branch(library=library)
        changed = sorted(values)
    else:
        branch = Branch.objects.select_for_update().get(pk=branch.pk)
        changed = _changed(branch, values)
    for name, value in values.items():
        setattr(branch, name, value)
    try:
        with transaction.atomic():
            branch.save()
    except IntegrityError:  # a concurrent save took the code between the check and the write
        raise FieldError("code", f"Another branch of {library.name} has this code; choose another.") from None
    action = "branch.created" if created else "branch.updated"
    audit.record(actor, action, library_id=library.pk, branch_id=branch.pk, code=branch.code, fields=changed)
    return branch


# --- administrators: who may configure the library --------------------------------------------


def administrators(library: Library) -> set[int]:
    """Ids of the active accounts holding the permission to configure ``library``."""
    rows = Membership.objects.filter(library=library, user__is_active=True).values_list("user_id", "roles__permissions")
    return {user_id for user_id, perms in rows if perms and ADMINISTER.value in perms}


def _keep_administrators(actor: audit.Actor, library: Library, before: set[int], field: str | None) -> None:
    """Refuse a change that takes away the actor's own administration or leaves the library without one.

    Called after the change inside its transaction, so raising undoes it.
    """
    after = administrators(library)
    me = actor.account.pk if actor.account is not None else None
    if me is not None and me in before and me not in after:
        message = (
            f"This would take away your own permission to configure {library.name}. A library must keep at "
            "least one administrator, so ask another administrator to make this change."
        )
    elif not after:
        message = (
            f"{library.name} would be left without an administrator. At least one active staff account must "
            f"keep a role with the permission {ADMINISTER.label!r}."
        )
    else:
        return
    if field is None:
        raise Conflict(message, code="last_administrator")
    raise FieldError(field, message)


# --- roles -------------------------------------------------------------------------------------


def clean_permissions(codes: Iterable[object], *, field: str = "permissions") -> list[str]:
    known = {p.value for p in Permission}
    chosen = {str(code).strip() for code in codes if str(code).strip()}
    unknown = sorted(chosen - known)
    if unknown:
        raise FieldError(field, f"Unknown permission {', '.join(c[:40] for c in unknown)}; tick the ones listed.")
    return [p.value for p in Permission if p.value in chosen]


@transaction.atomic
def save_role(
    *, actor: audit.Actor, library: Library, role: Role | None, name: str, permissions: Iterable[object]
) -> Role:
    """Create a role of ``library`` (``role`` None) or change its name and permissions.

    The change takes effect on the next request of every staff member holding the role.
    """
    _own(role, library)
    library = _lock(library)
    before = administrators(library)
    errors = _Errors()
    name = _text(errors, {"name": name}, "name", max_length=100, required=True)
    try:
        codes = clean_permissions(permissions)
    except FieldError as exc:
        errors.catch(exc)
        codes = []
    clash = Role.objects.filter(library=library, name__iexact=name)
    if role is not None:
        clash = clash.exclude(pk=role.pk)
    if name and clash.exists():
        errors.add("name", f"{library.name} already has a role called {name!r}; choose another name.")
    errors.raise_any()
    created = role is None
    if role is None:
        role = Role(library=library)
        old: set[str] = set()
    else:
        role = Role.objects.select_for_update().get(pk=role.pk)
        old = set(role.permissions or [])
    renamed = not created and role.name != name
    role.name, role.permissions = name, codes
    try:
        with transaction.atomic():
            role.save()
    except IntegrityError:
        raise FieldError("name", f"{library.name} already has a role called {name!r}; choose another name.") from None
    _keep_administrators(actor, library, before, "permissions")
    audit.record(
        actor, "role.created" if created else "role.updated", library_id=library.pk, role_id=role.pk,
        name=role.name, renamed=renamed, added=sorted(set(codes) - old), removed=sorted(old - set(codes)),
    )  # fmt: skip
    return role


@transaction.atomic
def delete_role(*, actor: audit.Actor, library: Library, role: Role) -> None:
    """Delete a role nobody holds; while staff hold it, the refusal says how many."""
    _own(role, library)
    library = _lock(library)
    holders = role.memberships.count()
    if holders:
        raise Conflict(
            f"The role {role.name!r} is held by {holders} staff account{'s' if holders != 1 else ''}. "
            "Take it away from them under Staff accounts first, then delete it.",
            code="role_in_use",
        )
    role_id, name = role.pk, role.name
    role.delete()
    audit.record(actor, "role.deleted", library_id=library.pk, role_id=role_id, name=name)


# --- staff accounts and their memberships ------------------------------------------------------


def may_manage_account(actor: audit.Actor, user: AbstractBaseUser) -> bool:
    """Whether ``actor`` may change the account itself (name, e-mail, password, active).

    An account can belong to several libraries; only someone who configures every one of them may
    change it, or an administrator of one library could take over an account used at another. The
    command line and the system may; nobody manages a superuser or an account without a library here.
    """
    account = actor.account
    if account is None:
        return actor.channel in {AuditEvent.Channel.CLI, AuditEvent.Channel.SYSTEM}
    if getattr(user, "is_superuser", False):
        return False
    libraries = set(Membership.objects.filter(user_id=user.pk).values_list("library_id", flat=True))
    mine = permissions_by_library(account)
    return bool(libraries) and all(ADMINISTER in mine.get(library_id, frozenset()) for library_id in libraries)


def _id(text: str) -> int | None:
    """A row id typed or posted as text; None for anything else (a bigint has at most 19 digits)."""
    return int(text) if text.isdigit() and len(text) <= 18 else None


def _clean_roles(errors: _Errors, library: Library, raw: Iterable[object]) -> list[Role]:
    texts = {text for text in (str(r).strip() for r in raw) if text}
    wanted = {_id(text) for text in texts}
    roles = list(Role.objects.filter(library=library, pk__in=[pk for pk in wanted if pk is not None]))
    if None in wanted or len(roles) != len(texts):
        errors.add("roles", f"Choose roles of {library.name} from the list.")
    return roles


def _clean_home_branch(errors: _Errors, library: Library, raw: object) -> Branch | None:
    text = str(raw or "").strip()
    if not text:
        return None
    pk = _id(text)
    branch = Branch.objects.filter(library=library, pk=pk).first() if pk is not None else None
    if branch is None:
        errors.add("home_branch", f"Choose a branch of {library.name} from the list, or none.")
    return branch


def _find_account(
    errors: _Errors, actor: audit.Actor, library: Library, user: User | None, username: str
) -> tuple[User | None, bool]:
    """Check a username; for a new membership it may name an account to attach. Returns (user, attached)."""
    user_model = get_user_model()
    try:
        user_model.username_validator(username)
    except ValidationError:
        errors.add("username", "Use letters, digits and @ . + - _ only, without spaces, e.g. jsmith.")
        return user, False
    existing = user_model.objects.filter(username__iexact=username)
    if user is not None:
        existing = existing.exclude(pk=user.pk)
    other = existing.first()
    if other is None:
        return user, False
    if user is None and may_manage_account(actor, other):
        # An account of another library this administrator configures too: give it a place here.
        if Membership.objects.filter(user=other, library=library).exists():
            errors.add("username", f"{other.username} already has a staff account at {library.name}; edit that one.")
        return other, True
    errors.add("username", "This username is taken; choose another.")
    return user, False


def _clean_account(
    errors: _Errors, actor: audit.Actor, library: Library, user: User | None, data: Mapping[str, Any]
) -> tuple[User | None, dict[str, Any], bool]:
    """The account fields present in ``data``; for a new membership, also the account to attach, if any."""
    values: dict[str, Any] = {}
    attached = False
    if "username" in data or user is None:
        username = _text(errors, data, "username", max_length=150, required=True)
        if username and len(username) <= 150:
            user, attached = _find_account(errors, actor, library, user, username)
        values["username"] = user.username if attached and user is not None else username
    for field in ("first_name", "last_name"):
        if field in data:
            values[field] = _text(errors, data, field, max_length=150, required=False)
    if "email" in data:
        values["email"] = _email(errors, data)
    if "is_active" in data:
        values["is_active"] = flag(data["is_active"])
        me = actor.account
        if not values["is_active"] and user is not None and me is not None and user.pk == me.pk:
            errors.add("is_active", "You cannot deactivate your own account; ask another administrator.")
    if attached:
        # Attaching keeps what the account already has; only what was typed in is filled in.
        values = {f: v for f, v in values.items() if f != "is_active" and v}
    elif user is not None and not may_manage_account(actor, user):
        for field, value in values.items():
            if getattr(user, field) != value:
                errors.add(field, NOT_YOURS)
        if data.get("password"):
            errors.add("password", NOT_YOURS)
    return user, values, attached


NOT_YOURS = (
    "This account works at other libraries too, where you do not configure; only its roles and home branch "
    "can be changed here."
)


def _check_password(errors: _Errors, password: str, user: User | None, account: Mapping[str, Any]) -> None:
    # The similarity check compares the password with the name and e-mail the account will have.
    names = ("username", "first_name", "last_name", "email")
    probe = get_user_model()(**{f: account.get(f, getattr(user, f, "")) for f in names})
    try:
        password_validation.validate_password(password, probe)
    except ValidationError as exc:
        for message in exc.messages:
            errors.add("password", message)


@transaction.atomic
def save_membership(
    *,
    actor: audit.Actor,
    library: Library,
    membership: Membership | None,
    data: Mapping[str, Any],
    roles: Iterable[object],
) -> Membership:
    """Create a staff account with a place at ``library`` (``membership`` None) or change one.

    ``data`` may hold ``username``, ``first_name``, ``last_name``, ``email``, ``is_active``, ``password``
    and ``home_branch``; a key left out is left unchanged. ``roles`` are ids of the library's roles and
    replace the account's roles here. A new account without a password gets an unusable one: the person
    cannot sign in until it is set (``patronage changepassword USERNAME``). A password is checked by
    Django's password validators. A new username that belongs to an account of another library the actor
    also configures gives that account a place here instead of making a new one.
    """
    _own(membership, library)
    library = _lock(library)
    before = administrators(library)
    errors = _Errors()
    user: User | None = membership.user if membership is not None else None
    user, account, attached = _clean_account(errors, actor, library, user, data)
    chosen_roles = _clean_roles(errors, library, roles)
    home_branch = membership.home_branch if membership is not None else None
    if "home_branch" in data:
        home_branch = _clean_home_branch(errors, library, data["home_branch"])
    password = str(data.get("password") or "")
    if password and "password" not in errors.by_field:
        _check_password(errors, password, user, account)
    errors.raise_any()

    account_created = user is None
    if user is None:
        user = get_user_model()(is_active=True)
        changed: list[str] = []
    else:
        changed = _changed(user, account)
    for field, value in account.items():
        setattr(user, field, value)
    if password:
        user.set_password(password)
    elif account_created:
        user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # a concurrent save took the username between the check and the write
        raise FieldError("username", "This username is taken; choose another.") from None

    created = membership is None
    if membership is None:
        membership = Membership.objects.create(user=user, library=library, home_branch=home_branch)
        old_roles: set[int] = set()
    else:
        if membership.home_branch_id != (home_branch.pk if home_branch else None):
            changed.append("home_branch")
            membership.home_branch = home_branch
            membership.save(update_fields=["home_branch"])
        old_roles = set(membership.roles.values_list("pk", flat=True))
    membership.roles.set(chosen_roles)
    new_roles = {role.pk for role in chosen_roles}
    if not created and new_roles != old_roles:
        changed.append("roles")
    deactivated = "is_active" in changed and not user.is_active
    _keep_administrators(actor, library, before, "is_active" if deactivated else "roles")
    audit.record(
        actor, "membership.created" if created else "membership.updated", library_id=library.pk,
        membership_id=membership.pk, user_id=user.pk, username=user.get_username(),
        account_created=account_created, account_attached=attached, fields=sorted(changed),
        roles=sorted(new_roles), password_set=bool(password),
    )  # fmt: skip
    return membership


@transaction.atomic
def remove_membership(*, actor: audit.Actor, library: Library, membership: Membership) -> None:
    """Take an account's place at ``library`` away. The account itself stays (it may work elsewhere)."""
    _own(membership, library)
    library = _lock(library)
    before = administrators(library)
    membership_id, user_id, username = membership.pk, membership.user_id, membership.user.get_username()
    membership.delete()
    _keep_administrators(actor, library, before, None)
    audit.record(
        actor, "membership.removed", library_id=library.pk, membership_id=membership_id, user_id=user_id,
        username=username,
    )  # fmt: skip


# --- a new library -----------------------------------------------------------------------------

ADMINISTRATOR_ROLE = "Library administrator"


@transaction.atomic
def create_library(
    *, actor: audit.Actor, data: Mapping[str, Any], administrator: Mapping[str, Any]
) -> tuple[Library, Membership]:
    """Set up a new library: its settings, a first branch, the default roles and its first administrator.

    ``data`` holds ``code``, ``name``, ``currency``, ``time_zone``, ``country`` and the first branch's
    ``branch_code``, ``branch_name`` and optional ``branch_email`` and ``branch_is_checkout_center``. ``administrator`` holds the account fields ``save_membership``
    takes (``username``, ``first_name``, ``last_name``, ``email``, ``password``); a username that exists
    already gives that account the administrator's place here. The roles are ``DEFAULT_ROLES``; the
    administrator gets the one with every permission. Only the command line (or the system) may create a
    library: whoever installs Patronage does, and no staff member can make libraries of their own.
    Every problem of every field is reported at once; nothing is written unless all is well.
    """
    if actor.account is not None or actor.channel not in {AuditEvent.Channel.CLI, AuditEvent.Channel.SYSTEM}:
        raise PermissionDenied("A library is created from the command line (patronage create_library).")
    errors = _Errors()
    code = _code(errors, data)
    values: dict[str, Any] = {"code": code, "name": _text(errors, data, "name", max_length=200, required=True)}
    for field, clean in (("currency", clean_currency), ("time_zone", clean_time_zone), ("country", clean_country)):
        try:
            values[field] = clean(data.get(field))
        except FieldError as exc:
            errors.catch(exc)
    if code and Library.objects.filter(code__iexact=code).exists():
        errors.add("code", f"A library with the code {code!r} exists already; choose another.")
    branch = {
        "code": str(data.get("branch_code") or "").strip(),
        "name": str(data.get("branch_name") or "").strip(),
        "email": str(data.get("branch_email") or "").strip(),
        "is_checkout_center": data.get("branch_is_checkout_center", False),
    }
    # The branch is checked as save_branch checks it, with its fields named as the caller gave them.
    branch_errors = _Errors()
    _code(branch_errors, branch)
    _text(branch_errors, branch, "name", max_length=200, required=True)
    _email(branch_errors, branch)
    for field, messages in branch_errors.by_field.items():
        for message in messages:
            errors.add(f"branch_{field}", message)
    if not str(administrator.get("username") or "").strip():
        errors.add("username", "Name the library's first administrator's account, e.g. jsmith.")
    errors.raise_any()

    library = Library(**values)
    try:
        with transaction.atomic():
            library.save()
    except IntegrityError:  # a concurrent creation took the code between the check and the write
        raise FieldError("code", f"A library with the code {code!r} exists already; choose another.") from None
    first_branch = save_branch(actor=actor, library=library, branch=None, data=branch)
    # The roles are made directly: save_role refuses any change that leaves a library without an
    # administrator, and a library has none until the membership below exists.
    roles = {
        name: Role.objects.create(library=library, name=name, permissions=[p.value for p in Permission if p in perms])
        for name, perms in DEFAULT_ROLES.items()
    }
    account = {**administrator, "home_branch": str(first_branch.pk)}
    membership = save_membership(
        actor=actor, library=library, membership=None, data=account, roles=[roles[ADMINISTRATOR_ROLE].pk]
    )
    audit.record(
        actor, "library.created", library_id=library.pk, code=library.code, branch_id=first_branch.pk,
        roles=sorted(roles), administrator=membership.user.get_username(),
    )  # fmt: skip
    return library, membership
