"""Patron passwords for the portal: checking them, the lock-out, and the e-mailed set-password links.

Every place that checks a patron's password calls ``authenticate``, so one lock-out counter per
account (scope ``patron``) holds across all of them. The counter per client address is the one the
staff sign-in keeps (scope ``staff``): an address guessing patron passwords and staff passwords spends
one allowance.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from patronage.core import audit, clock, rows, throttle, tokens
from patronage.core.errors import Conflict, DomainError, Refused, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.core.values import flag
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Barcode, Patron, PatronType
from patronage.standing import services as standing_services
from patronage.standing.rules import Action, Reason, Standing

from . import directory
from .models import InstitutionSignIn, PasswordLink, PatronCredential

ACCOUNT_SCOPE = "patron"
# The staff sign-in's scope: its per-address counter is shared with the portal's.
ADDRESS_SCOPE = "staff"
LINK_LIFETIME = dt.timedelta(hours=24)
# "Forgot password" sends at most one e-mail per patron in this time, so the form cannot flood an inbox.
RESET_QUIET_TIME = dt.timedelta(minutes=5)
_TOKEN_SALT = "patronage.credentials.PasswordLink"  # noqa: S105 - the HMAC's namespace, not a secret

WRONG_CREDENTIALS = "The card number or password is not right. Check both and try again."
LOCKED = (
    "Too many failed sign-in attempts for this account or from this address. Try again in {minutes} "
    "minutes, or ask the library to lift the lock."
)

DIRECTORY_DOWN = (
    "The institution's sign-in service is not answering; try again later. If it keeps happening, tell the library."
)


class SignInFailed(DomainError):
    """Wrong identifier or password; the same answer whether or not the account exists."""

    code = "sign_in_failed"
    status = 400

    def __init__(self) -> None:
        super().__init__(WRONG_CREDENTIALS)


class SignInLocked(DomainError):
    code = "sign_in_locked"
    status = 429

    def __init__(self, lock: throttle.Lock) -> None:
        self.retry_after_seconds = lock.retry_after_seconds
        super().__init__(LOCKED.format(minutes=max(1, round(self.retry_after_seconds / 60))))


class SignInRefused(Refused):
    """The password is right but standing forbids ``portal_login``; ``reasons`` say why and what to do."""

    code = "sign_in_refused"


class DirectoryUnavailable(DomainError):
    """The institution's directory did not answer; nothing is counted against the patron."""

    code = "directory_unavailable"
    status = 503

    def __init__(self) -> None:
        super().__init__(DIRECTORY_DOWN)


class InstitutionManagesPassword(Conflict):
    """The patron signs in with the institution's account; the library keeps no password for them."""

    code = "institution_manages_password"


class LinkInvalid(DomainError):
    code = "link_invalid"
    status = 400


class NoEmailAddress(Conflict):
    code = "no_email_address"


@dataclass(frozen=True)
class SignInState:
    """What staff see about a patron's portal sign-in."""

    has_password: bool
    institution: bool  # the institution's directory checks the password; the library keeps none
    password_set_at: dt.datetime | None
    locked_until: dt.datetime | None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


@dataclass(frozen=True)
class PortalSession:
    """A signed-in patron, checked again on this request, with their standing now."""

    patron: Patron
    standing: Standing


def _account(patron: Patron) -> str:
    return f"patron:{patron.pk}"


def _address_keys(address: str | None) -> list[str]:
    return [f"ip:{address}"] if address else []


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return make_password(secrets.token_urlsafe(16))


def find_patron(library: Library | int, identifier: str) -> Patron | None:
    """The patron at ``library`` with this Person-ID, else with this *current* barcode.

    An old (replaced) barcode finds nobody: whoever holds a lost card cannot sign in with it.
    """
    library_id = library if isinstance(library, int) else library.pk
    text = identifier.strip()[:64]
    if not text:
        return None
    # One statement (self-check machines ask this for every message): both indexes probed, a Person-ID match
    # ranked first, the patron built with its library and credential from the row (core.rows), without the
    # ORM's query compiler, which cost more than the statement itself.
    params = [library_id, text, library_id, text, library_id]
    connection, found = rows.fetch(Patron, "credentials.find_patron", _build_find_patron_sql, params)
    if not found:
        return None
    patron, found_library, credential = rows.instances(connection, connection.alias, _FOUND, found[0])
    assert isinstance(patron, Patron)  # noqa: S101 - the inner join always gives the patron
    Patron._meta.get_field("library").set_cached_value(patron, found_library)
    Patron.credential.related.set_cached_value(patron, credential)  # None: the patron has no password
    return patron


# The models find_patron reads in one row, with their aliases in its statement.
_FOUND: tuple[rows.Join, ...] = ((Patron, "p"), (Library, "l"), (PatronCredential, "k"))


def _build_find_patron_sql(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    patrons, barcodes = quote(Patron._meta.db_table), quote(Barcode._meta.db_table)
    return (
        f"SELECT {rows.select(connection, _FOUND).columns} FROM ("
        f" SELECT x.id AS patron_id, 0 AS pos FROM {patrons} x WHERE x.library_id = %s AND x.person_id = %s"
        f" UNION ALL SELECT b.patron_id, 1 FROM {barcodes} b WHERE b.library_id = %s AND b.number = %s AND b.is_active"
        f") m JOIN {patrons} p ON p.id = m.patron_id JOIN {quote(Library._meta.db_table)} l ON l.id = p.library_id"
        f" LEFT JOIN {quote(PatronCredential._meta.db_table)} k ON k.patron_id = p.id"
        " WHERE p.library_id = %s ORDER BY m.pos LIMIT 1"
    )


def _credential(patron: Patron) -> PatronCredential | None:
    # A missing reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError.
    credential: PatronCredential | None = getattr(patron, "credential", None)
    return credential


def _patron_reasons(reasons: tuple[Reason, ...] | list[Reason]) -> list[dict[str, str]]:
    return [{"code": r.code.value, "message": r.patron_message, "remedy": r.remedy} for r in reasons]


def authenticate(library: Library | int, identifier: str, password: str, address: str | None) -> Patron:
    """Sign a patron in to the portal: ``verify_password``, then standing's ``portal_login``, then the audit.

    Raises what ``verify_password`` raises, and ``SignInRefused`` with the patron's own reasons when standing
    forbids signing in.
    """
    patron, through = _verify(library, identifier, password, address)
    decision = standing_services.decide(patron, Action.PORTAL_LOGIN)
    if not decision.allowed:
        raise SignInRefused(
            "You cannot sign in to the portal at the moment. Here is why and what to do.",
            _patron_reasons(decision.reasons),
        )
    actor = audit.Actor(user=None, channel=AuditEvent.Channel.PORTAL, source_ip=address)
    audit.record(
        actor, "patron.portal_signed_in", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, through=through,
    )  # fmt: skip
    return patron


def verify_password(
    library: Library | int, identifier: str, password: str, address: str | None, *, client: str | None = None
) -> Patron:
    """The patron whose Person-ID or current barcode and password (or PIN) these are, or an error.

    The one password check of every face that takes a patron's password: the portal's sign-in and the
    protocols (interlibrary-loan validation, SIP2, NCIP), which then judge standing for their own action.
    It signs nobody in and records no sign-in.

    ``client`` is the login of the protocol client the PIN came through (a self-check machine, an e-book
    vendor, a resource-sharing hub). Its address is shared by every patron it serves, so its failures are
    counted per client, with a higher limit (``LOGIN_FAILURE_LIMIT_PER_CLIENT``), instead of per address:
    patrons mistyping their PINs at one kiosk do not lock out everyone else using it.
    """
    return _verify(library, identifier, password, address, client)[0]


def _verify(
    library: Library | int, identifier: str, password: str, address: str | None, client: str | None = None
) -> tuple[Patron, str]:
    """``verify_password``, also saying how the password was checked ("password" or "institution").

    ``SignInFailed`` never says which of the two was wrong nor whether the account exists, and the
    password is hashed either way so that the answer takes as long. Failures count against the
    account and the address (or the protocol client); a standing lock refuses before the password is
    looked at.

    Where the library's institution manages the passwords (``InstitutionSignIn``), the patrons it covers
    are checked against its directory instead (``_directory_sign_in``); the identifier may then also be
    the patron's directory login name. A directory that does not answer raises ``DirectoryUnavailable``
    and counts nothing.
    """
    library_id = library if isinstance(library, int) else library.pk
    patron = find_patron(library_id, identifier)
    institution = institution_sign_in(library_id)
    if institution is not None and patron is not None and not institution_covers(institution, patron):
        institution = None  # this patron keeps a local password
    # An unknown identifier is counted under its own key, so it locks exactly like a real account.
    account = _account(patron) if patron else f"unknown:{library_id}:{identifier.strip()[:64]}"
    account_keys = throttle.keys_for(account, None)
    if client:
        account_keys.append(throttle.client_key(client))
        address_keys = []
    else:
        address_keys = _address_keys(address)
    counted = _refuse_if_locked(account_keys, address_keys)
    if institution is not None:
        patron, ok = _directory_sign_in(institution, patron, identifier, password)
        if patron is not None and _account(patron) != account:
            # Found through the directory's login name: the patron's own counter applies from here on.
            account = _account(patron)
            account_keys = throttle.keys_for(account, None) + account_keys[1:]  # the client's key stays
            counted = _refuse_if_locked(account_keys, [])
    else:
        credential = _credential(patron) if patron else None
        if credential is None:
            check_password(password, _dummy_hash())
            ok = False
        else:

            def upgrade(raw: str) -> None:
                credential.password = make_password(raw)
                credential.save(update_fields=["password"])

            ok = bool(password) and check_password(password, credential.password, setter=upgrade)
    if not ok or patron is None:
        lock = throttle.record_failure(ACCOUNT_SCOPE, account_keys)
        if address_keys:
            lock = throttle.record_failure(ADDRESS_SCOPE, address_keys) or lock
        if lock is not None:
            raise SignInLocked(lock)
        raise SignInFailed()
    if counted:
        throttle.record_success(ACCOUNT_SCOPE, account)
    return patron, "institution" if institution is not None else "password"


def _refuse_if_locked(account_keys: list[str], address_keys: list[str]) -> bool:
    """Raise ``SignInLocked`` when the account or the address is locked; else say whether the account has
    failures counted, which a right password then clears (no write when there is nothing to clear)."""
    lock, counted = throttle.lock_and_counted(ACCOUNT_SCOPE, account_keys)
    if lock is None and address_keys:
        lock, _ = throttle.lock_and_counted(ADDRESS_SCOPE, address_keys)
    if lock is not None:
        raise SignInLocked(lock)
    return account_keys[0] in counted  # the account's own counter (a protocol client's is not reset)


def _directory_sign_in(
    institution: InstitutionSignIn, patron: Patron | None, identifier: str, password: str
) -> tuple[Patron | None, bool]:
    """(the patron, whether the directory accepted the password for them).

    The entry is looked up by the identifier (as login name or institution id) and, for a patron found
    here, by their Person-ID too, so a card number works as well. The password must bind as that entry,
    and the entry's institution id must be the patron's Person-ID: a directory account cannot open the
    portal account of somebody else whose card number or Person-ID happens to be its login name.
    """
    names = [identifier.strip()[:256]]
    if patron is not None and patron.person_id:
        names.append(patron.person_id)
    try:
        entry = directory.check_password(directory_config(institution), names, password)
    except directory.Unavailable:
        raise DirectoryUnavailable() from None
    if entry is None or not entry.institution_id:
        return patron, False
    if patron is None:
        # Found by the directory's login name: the patron is the one with the entry's institution id, and
        # a wrong password counts against them as it would under their Person-ID.
        patron = (
            Patron.objects.select_related("library", "credential")
            .filter(library_id=institution.library_id, person_id=entry.institution_id)
            .first()
        )
        if patron is None or not institution_covers(institution, patron):
            return None, False
    same_person = patron.person_id is not None and hmac.compare_digest(
        patron.person_id.encode(), entry.institution_id.encode()
    )
    return patron, entry.password_ok and same_person


# --- institution sign-in ------------------------------------------------------------------------------


def institution_sign_in(library: Library | int) -> InstitutionSignIn | None:
    """The library's institution sign-in when it is turned on, else None."""
    library_id = library if isinstance(library, int) else library.pk
    return InstitutionSignIn.objects.filter(library_id=library_id, enabled=True).first()


def institution_covers(institution: InstitutionSignIn, patron: Patron) -> bool:
    """Whether the institution checks this patron's password (all patron types, or the chosen ones)."""
    if not institution.enabled:
        return False
    if institution.all_patron_types:
        return True
    return institution.patron_types.filter(pk=patron.patron_type_id).exists()


def managed_by_institution(patron: Patron) -> InstitutionSignIn | None:
    """The institution sign-in that manages this patron's password, or None (a local password)."""
    institution = institution_sign_in(patron.library_id)
    return institution if institution is not None and institution_covers(institution, patron) else None


def bind_password_variable(library_code: str) -> str:
    """The environment variable that, when set, holds the search account's password for this library."""
    return "PATRONAGE_LDAP_BIND_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", library_code.upper())


def directory_config(institution: InstitutionSignIn) -> directory.Config:
    code = Library.objects.filter(pk=institution.library_id).values_list("code", flat=True).first() or ""
    password = os.environ.get(bind_password_variable(code)) or institution.bind_password
    return directory.Config(
        server_uris=[u.strip() for u in institution.server_uris.splitlines() if u.strip()],
        bind_dn=institution.bind_dn,
        bind_password=password,
        search_base=institution.search_base,
        id_attribute=institution.id_attribute,
        login_attribute=institution.login_attribute,
        extra_filter=institution.extra_filter,
        start_tls=institution.start_tls,
        timeout_seconds=int(institution.timeout_seconds),
        ca_file=os.environ.get("PATRONAGE_LDAP_CA_FILE") or None,
    )


def institution_password_message(institution: InstitutionSignIn) -> str:
    """What a patron (or staff member) is told instead of a set-password link."""
    account = institution.service_name or "your institution's account"
    where = (
        f" Change or reset it at {institution.password_url}."
        if institution.password_url
        else " Ask your institution's help desk to change or reset it."
    )
    return f"You sign in with {account}, so your institution manages this password, not the library.{where}"


def session_stamp(patron: Patron) -> str:
    """Kept in the session at sign-in; a new password changes it and so ends every older session."""
    credential = _credential(patron)
    if credential is not None:
        return credential.set_at.isoformat()
    # No local password: an institution patron's session holds while the institution still manages them.
    return "institution" if managed_by_institution(patron) is not None else ""


def portal_session(patron_id: object, library_id: object, stamp: object) -> PortalSession | None:
    """The signed-in patron if they still may use the portal, else None (the session must end).

    The portal's gatekeeper: checked on every request, so a patron made inactive, moved or whose
    password changed elsewhere is signed out at their next click.
    """
    try:
        pk, lib = int(str(patron_id)), int(str(library_id))
    except ValueError:
        return None
    patron = _session_patron(pk, lib)
    if patron is None or not stamp or session_stamp(patron) != stamp:
        return None
    standing = standing_services.standing(patron)
    if not standing.decision(Action.PORTAL_LOGIN).allowed:
        return None
    return PortalSession(patron=patron, standing=standing)


# The models portal_session reads in one row, with their aliases in its statement.
_SESSION: tuple[rows.Join, ...] = (
    (Patron, "p"), (Library, "l"), (PatronType, "t"), (Branch, "b"), (PatronCredential, "k"),
)  # fmt: skip


def _session_patron(pk: int, library_id: int) -> Patron | None:
    """The patron with library, type, registered branch and credential, as one hand-written statement: every
    portal page reads it, and building the read through the ORM's query compiler cost more than running it."""
    connection, found = rows.fetch(Patron, "credentials.portal_session", _build_session_sql, [pk, library_id])
    if not found:
        return None
    patron, library, patron_type, branch, credential = rows.instances(connection, connection.alias, _SESSION, found[0])
    assert isinstance(patron, Patron)  # noqa: S101 - the statement's FROM
    Patron._meta.get_field("library").set_cached_value(patron, library)
    Patron._meta.get_field("patron_type").set_cached_value(patron, patron_type)
    Patron._meta.get_field("registered_branch").set_cached_value(patron, branch)
    Patron.credential.related.set_cached_value(patron, credential)  # None: the patron has no password
    return patron


def _build_session_sql(connection: BaseDatabaseWrapper) -> str:
    quote = connection.ops.quote_name
    table = {model: quote(model._meta.db_table) for model, _ in _SESSION}
    return (
        f"SELECT {rows.select(connection, _SESSION).columns} FROM {table[Patron]} p"
        f" JOIN {table[Library]} l ON l.id = p.library_id"
        f" JOIN {table[PatronType]} t ON t.id = p.patron_type_id"
        f" JOIN {table[Branch]} b ON b.id = p.registered_branch_id"
        f" LEFT JOIN {table[PatronCredential]} k ON k.patron_id = p.id"
        " WHERE p.id = %s AND p.library_id = %s"
    )


def checkout_centers(patron: Patron) -> list[Branch]:
    """The branches of the patron's library that lend: the checkout centers the portal offers."""
    return list(Branch.objects.filter(library_id=patron.library_id, is_checkout_center=True).order_by("name", "pk"))


# --- passwords and links ------------------------------------------------------------------------------


def _token(salt: str) -> str:
    return tokens.salted_token(_TOKEN_SALT, salt)


def issue_link(patron: Patron, purpose: str = PasswordLink.Purpose.SET) -> tuple[PasswordLink, str]:
    """A new single-use link for ``patron``; returns the row and the token (which is not stored)."""
    if purpose not in PasswordLink.Purpose.values:
        raise ValidationFailed({"purpose": [f"Choose one of {', '.join(PasswordLink.Purpose.values)}."]})
    now = clock.now()
    salt = secrets.token_hex(16)
    token = _token(salt)
    link = PasswordLink.objects.create(
        patron=patron,
        purpose=purpose,
        salt=salt,
        digest=tokens.digest(token),
        created_at=now,
        expires_at=now + LINK_LIFETIME,
    )
    return link, token


def link_token(link: PasswordLink) -> str:
    """The token of ``link``, rebuilt from its salt (for the e-mail, sent later by the worker)."""
    return _token(link.salt)


def send_link(*, actor: audit.Actor, patron: Patron, purpose: str, base_url: str) -> PasswordLink:
    """Issue a link and queue its e-mail to the patron's primary address, in one transaction."""
    institution = managed_by_institution(patron)
    if institution is not None:
        raise InstitutionManagesPassword(
            f"{patron.display_name} signs in with the institution's account; the library keeps no password "
            f"for them, so no link is sent. {institution_password_message(institution)}"
        )
    if not patron.primary_email:
        raise NoEmailAddress(
            f"{patron.display_name} has no primary e-mail address, so no link can be sent. "
            "Add one in the patron's contact details, then send the link again."
        )
    from . import mail  # the mail module imports this one

    with transaction.atomic():
        link, _ = issue_link(patron, purpose)
        audit.record(
            actor, "patron.password_link_sent", library_id=patron.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, purpose=link.purpose, expires_at=link.expires_at.isoformat(),
        )  # fmt: skip
        # The message is queued on the outbox in this same transaction: the link and its e-mail are
        # written together or not at all, and the worker sends it (with retries) after the commit.
        mail.deliver_password_link(link.pk, base_url)
    return link


def request_reset(library: Library | int, identifier: str, *, base_url: str, address: str | None) -> None:
    """ "Forgot password": e-mail a reset link if the account exists and can receive one.

    Returns nothing and raises nothing for an unknown account, a patron without an e-mail address or a
    patron who just got a link, so the page gives one answer in every case.
    """
    patron = find_patron(library, identifier)
    if patron is None or not patron.primary_email or managed_by_institution(patron) is not None:
        # An institution patron gets no link: the forgot-password page says where they change it.
        return
    recent = PasswordLink.objects.filter(patron=patron, created_at__gt=clock.now() - RESET_QUIET_TIME, used_at=None)
    if recent.exists():
        return
    actor = audit.Actor(user=None, channel=AuditEvent.Channel.PORTAL, source_ip=address)
    send_link(actor=actor, patron=patron, purpose=PasswordLink.Purpose.RESET, base_url=base_url)


def _usable_link(token: str, *, for_update: bool = False) -> PasswordLink:
    token = token.strip()
    queryset = PasswordLink.objects.select_related("patron", "patron__library")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    link = queryset.filter(digest=tokens.digest(token)).first() if 20 <= len(token) <= 100 else None
    # Compare again in constant time; the index lookup only narrows the search.
    if link is None or not hmac.compare_digest(link.digest, tokens.digest(token)):
        raise LinkInvalid(
            "This link is not valid. Check that you copied the whole link from the e-mail, or ask for a new one."
        )
    if link.used_at is not None:
        raise LinkInvalid("This link has already been used. Each link works once; ask for a new one if you need it.")
    if link.expires_at <= clock.now():
        raise LinkInvalid("This link has expired. Ask for a new one with “Forgot your password?”.")
    return link


def check_link(token: str) -> PasswordLink:
    """The link if it can still be used, else ``LinkInvalid`` saying why."""
    return _usable_link(token)


def _validated(patron: Patron, password: str, field: str = "password") -> str:
    try:
        # The similarity check reads first_name, last_name and email-like attributes; a patron has them.
        validate_password(password, user=cast(Any, patron))
    except ValidationError as exc:
        raise ValidationFailed({field: list(exc.messages)}) from None
    return password


def set_password(patron: Patron, password: str, *, actor: audit.Actor) -> PatronCredential:
    """Set the patron's password (checked by ``AUTH_PASSWORD_VALIDATORS``).

    Refused for a patron whose institution manages the password: the library keeps none for them.
    """
    institution = managed_by_institution(patron)
    if institution is not None:
        raise InstitutionManagesPassword(institution_password_message(institution))
    _validated(patron, password)
    now = clock.now()
    with transaction.atomic():
        credential, _ = PatronCredential.objects.update_or_create(
            patron=patron, defaults={"password": make_password(password), "set_at": now, "must_change": False}
        )
        # Every other outstanding link is spent too: one password change closes them all.
        PasswordLink.objects.filter(patron=patron, used_at=None).update(used_at=now)
        throttle.clear(ACCOUNT_SCOPE, _account(patron))
        audit.record(
            actor, "patron.password_set", library_id=patron.library_id, patron_id=patron.pk,
            patron_label=patron.display_name,
        )  # fmt: skip
    return credential


def set_password_with_link(token: str, password: str, *, address: str | None = None) -> Patron:
    """Use a link once: set the password of its patron. Expired, used or unknown links are refused."""
    with transaction.atomic():
        link = _usable_link(token, for_update=True)
        patron = link.patron
        actor = audit.Actor(user=None, channel=AuditEvent.Channel.PORTAL, source_ip=address)
        set_password(patron, password, actor=actor)
    return patron


# --- staff --------------------------------------------------------------------------------------------


def sign_in_state(patron: Patron) -> SignInState:
    credential = PatronCredential.objects.filter(patron=patron).only("set_at").first()
    lock = throttle.current_lock(ACCOUNT_SCOPE, throttle.keys_for(_account(patron), None))
    return SignInState(
        has_password=credential is not None,
        institution=managed_by_institution(patron) is not None,
        password_set_at=credential.set_at if credential else None,
        locked_until=lock.until if lock else None,
    )


def clear_lock(*, actor: audit.Actor, patron: Patron) -> bool:
    """Lift the patron's sign-in lock (their account's counter starts again). True if there was one."""
    with transaction.atomic():
        was_locked = sign_in_state(patron).locked
        throttle.clear(ACCOUNT_SCOPE, _account(patron))
        audit.record(
            actor, "patron.sign_in_lock_cleared", library_id=patron.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, was_locked=was_locked,
        )  # fmt: skip
    return was_locked


def idle_minutes() -> int:
    return int(getattr(settings, "PATRONAGE_PORTAL_IDLE_MINUTES", 15))


# --- the library's institution sign-in setting ----------------------------------------------------------

INSTITUTION_FIELDS = (
    "enabled", "server_uris", "start_tls", "bind_dn", "bind_password", "search_base", "id_attribute",
    "login_attribute", "extra_filter", "timeout_seconds", "all_patron_types", "patron_types", "service_name",
    "password_url",
)  # fmt: skip
_ATTRIBUTE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]{0,99}|\d+(?:\.\d+)+)$")
TIMEOUT_MAX = 60


def institution_settings(library: Library) -> InstitutionSignIn:
    """The library's institution sign-in setting, unsaved defaults (turned off) when it has none yet."""
    found = InstitutionSignIn.objects.filter(library=library).first()
    return found or InstitutionSignIn(library=library)


def _filter_problem(text: str) -> str | None:
    from ldap3.core.exceptions import LDAPInvalidFilterError
    from ldap3.operation.search import parse_filter

    candidate = text if text.startswith("(") else f"({text})"
    try:
        parse_filter(candidate, None, auto_escape=False, auto_encode=False, validator=None, check_names=False)
    except (LDAPInvalidFilterError, ValueError, IndexError):
        return "This is not an LDAP filter; write it like (objectClass=person) or (&(ou=staff)(!(status=left)))."
    return None


def _clean_institution(library: Library, data: Mapping[str, Any], current: InstitutionSignIn) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}

    def text(name: str, limit: int) -> str:
        value = str(data.get(name, getattr(current, name)) or "").strip()
        if len(value) > limit:
            errors.setdefault(name, []).append(f"At most {limit} characters.")
        return value

    values: dict[str, Any] = {}
    for name in ("enabled", "start_tls", "all_patron_types"):
        values[name] = flag(data[name]) if name in data else getattr(current, name)
    raw_uris = data.get("server_uris", current.server_uris)
    lines = raw_uris if isinstance(raw_uris, list | tuple) else str(raw_uris or "").splitlines()
    uris = [str(u).strip() for u in lines if str(u).strip()]
    for uri in uris:
        scheme, _, rest = uri.partition("://")
        host = rest.split("/", 1)[0]
        if scheme.lower() not in {"ldap", "ldaps"} or not host or any(c.isspace() for c in uri):
            errors.setdefault("server_uris", []).append(
                f"{uri!r} is not an LDAP address; write ldap://host:389 or ldaps://host:636, one per line."
            )
        elif scheme.lower() == "ldaps" and values["start_tls"]:
            errors.setdefault("start_tls", []).append(
                "StartTLS upgrades a plain ldap:// connection; an ldaps:// address is encrypted already. Untick "
                "StartTLS or use ldap:// addresses."
            )
    values["server_uris"] = "\n".join(uris)
    values["bind_dn"] = text("bind_dn", 500)
    values["search_base"] = text("search_base", 500)
    values["extra_filter"] = text("extra_filter", 500)
    values["service_name"] = text("service_name", 200)
    for name, example in (("id_attribute", "employeeNumber"), ("login_attribute", "uid")):
        values[name] = text(name, 100)
        if not _ATTRIBUTE.match(values[name]):
            errors.setdefault(name, []).append(f"Name one attribute of the directory's entries, e.g. {example}.")
    if values["extra_filter"] and (problem := _filter_problem(values["extra_filter"])):
        errors.setdefault("extra_filter", []).append(problem)
    values["password_url"] = text("password_url", 200)
    if values["password_url"] and not re.match(r"^https?://[^\s/]+", values["password_url"]):
        errors.setdefault("password_url", []).append("Enter a web address starting with https://.")
    raw_timeout = str(data.get("timeout_seconds", current.timeout_seconds) or "").strip()
    if not raw_timeout.isdigit() or not 1 <= int(raw_timeout) <= TIMEOUT_MAX:
        errors.setdefault("timeout_seconds", []).append(f"Enter whole seconds from 1 to {TIMEOUT_MAX}, e.g. 5.")
    else:
        values["timeout_seconds"] = int(raw_timeout)
    if "bind_password" in data and str(data["bind_password"] or ""):
        values["bind_password"] = str(data["bind_password"])
        if len(values["bind_password"]) > 500:
            errors.setdefault("bind_password", []).append("At most 500 characters.")
    if not values["bind_dn"]:
        # No search account: the directory is searched anonymously, and a stored password is forgotten.
        if values.get("bind_password"):
            errors.setdefault("bind_dn", []).append(
                "Name the account the password belongs to, e.g. cn=portal,dc=example,dc=edu."
            )
        values["bind_password"] = ""
    from patronage.patrons.models import PatronType

    if "patron_types" in data:
        raw = data["patron_types"]
        wanted = [str(v).strip() for v in (raw if isinstance(raw, list | tuple) else [raw]) if str(v).strip()]
        types = list(PatronType.objects.filter(library=library, pk__in=[int(v) for v in wanted if v.isdigit()]))
        if len(types) != len(set(wanted)):
            errors.setdefault("patron_types", []).append("Choose patron types of this library.")
        values["patron_types"] = types
    elif current.pk:
        values["patron_types"] = list(current.patron_types.all())
    else:
        values["patron_types"] = []
    if values["enabled"]:
        required = {
            "server_uris": "Enter the directory's address, e.g. ldaps://ldap.example.edu.",
            "search_base": "Enter where people's entries are, e.g. ou=people,dc=example,dc=edu.",
        }
        for name, message in required.items():
            if not values[name] and name not in errors:
                errors[name] = [message]
        if not values["all_patron_types"] and not values["patron_types"] and "patron_types" not in errors:
            errors["patron_types"] = ["Choose the patron types who sign in through the institution, or all of them."]
    if errors:
        raise ValidationFailed(errors)
    return values


def save_institution_sign_in(*, actor: audit.Actor, library: Library, data: Mapping[str, Any]) -> InstitutionSignIn:
    """Change the library's institution sign-in. Fields not in ``data`` keep their value; an empty
    ``bind_password`` keeps the stored one (it is never shown back).

    Turning it on (or widening the patron types it covers) removes the local passwords and unused
    set-password links of the patrons it now covers: the library keeps no password for them.
    """
    with transaction.atomic():
        Library.objects.select_for_update().filter(pk=library.pk).first()
        current = institution_settings(library)
        values = _clean_institution(library, data, current)
        types = values.pop("patron_types")
        changed = sorted(name for name, value in values.items() if getattr(current, name) != value) + (
            ["patron_types"]
            if {t.pk for t in types} != ({t.pk for t in current.patron_types.all()} if current.pk else set())
            else []
        )
        for name, value in values.items():
            setattr(current, name, value)
        current.save()
        current.patron_types.set(types)
        removed = 0
        if current.enabled:
            covered = PatronCredential.objects.filter(patron__library=library)
            links = PasswordLink.objects.filter(patron__library=library, used_at=None)
            if not current.all_patron_types:
                covered = covered.filter(patron__patron_type__in=types)
                links = links.filter(patron__patron_type__in=types)
            removed, _ = covered.delete()
            links.update(used_at=clock.now())
        audit.record(
            actor, "library.institution_sign_in_saved", library_id=library.pk, changed=changed,
            enabled=current.enabled, local_passwords_removed=removed,
        )  # fmt: skip
    return current
