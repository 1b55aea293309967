"""Protocol clients: managing them, and checking who is asking.

``authenticate_client`` is the one door for every protocol (REST now; SIP2 and NCIP use it too). Wrong
secrets count against the shared lock-out (``core.throttle``) per login and per address, and every
attempt, good or bad, is written to the audit log: as its own ``protocol_client.authenticate`` event, or,
for a caller that asks so (``audit_success=False``), a good one inside the event of what the request then
did, which names the client, the channel and the address (NCIP's LookupUser: ``patron.ill_validated``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import QuerySet

from patronage.core import audit, clock, rows, throttle, tokens
from patronage.core.errors import DomainError, NotFound, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.core.values import flag, yes_or_no
from patronage.libraries.models import Branch, Library

from .models import Charset, Protocol, ProtocolClient, Sip2ExtensionField

SCOPE = "client"
SECRET_PREFIX = "pcs_"  # noqa: S105 - a public marker, not a secret
# Last-used times are written at most this often, so a busy client does not write on every call.
_LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
_LOGIN_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class ClientAuthenticationFailed(DomainError):
    """Unknown login, wrong secret, protocol or address not allowed, or disabled: one answer for all."""

    code = "client_authentication_failed"
    status = 401

    def __init__(self) -> None:
        super().__init__("The client login or secret is not right, or this client may not call from here.")


class ClientLocked(DomainError):
    code = "client_locked"
    status = 429

    def __init__(self, lock: throttle.Lock) -> None:
        self.retry_after_seconds = lock.retry_after_seconds
        super().__init__(
            f"Too many failed attempts for this client login or from this address; try again in "
            f"{self.retry_after_seconds} seconds or ask an administrator to check the client."
        )


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(24)


def parse_networks(values: Iterable[str]) -> list[str]:
    """Each address or network in canonical CIDR form; raises ValueError naming the first bad one."""
    out: list[str] = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValueError(text) from None
    return out


def _others(current: ProtocolClient | None) -> QuerySet[ProtocolClient]:
    return ProtocolClient.objects.all() if current is None else ProtocolClient.objects.exclude(pk=current.pk)


def _validated(library: Library, data: Mapping[str, Any], *, current: ProtocolClient | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = str(data.get("name", "")).strip()
    if not name:
        errors["name"] = ["Give the client a name that says which system it is, e.g. 'ReShare' or 'Kiosk 2'."]
    elif len(name) > 100:
        errors["name"] = ["Keep the name to 100 characters or fewer."]
    elif _others(current).filter(library=library, name=name).exists():
        errors["name"] = ["Another client of this library has this name; choose another."]
    login = str(data.get("login", "")).strip()
    if not login:
        errors["login"] = ["Enter the login the system will send, e.g. reshare-north."]
    elif len(login) > 64 or not set(login) <= _LOGIN_CHARS:
        errors["login"] = ["Use up to 64 letters, digits, dots, hyphens and underscores."]
    elif _others(current).filter(login=login).exists():
        errors["login"] = ["This login is taken (logins are unique across all libraries); choose another."]
    raw_protocols = data.get("protocols") or []
    protocols = [p for p in Protocol.values if p in set(raw_protocols)]
    if not protocols or len(protocols) != len(set(raw_protocols)):
        errors["protocols"] = ["Choose one or more of the protocols: " + ", ".join(Protocol.values) + "."]
    raw_networks = data.get("allowed_networks", "")
    lines = raw_networks.split() if isinstance(raw_networks, str) else [str(v) for v in raw_networks]
    networks: list[str] = []
    try:
        networks = parse_networks(lines)
    except ValueError as exc:
        errors["allowed_networks"] = [
            f"'{exc}' is not an address or network; write one per line, e.g. 192.0.2.10 or 198.51.100.0/24."
        ]
    else:
        if not networks:
            errors["allowed_networks"] = [
                "List at least one address or network the client calls from (0.0.0.0/0 and ::/0 allow any)."
            ]
    charset = str(data.get("charset") or Charset.CP850)
    if charset not in Charset.values:
        errors["charset"] = ["Choose one of: " + ", ".join(Charset.values) + "."]
    ill: dict[str, Any] = {}
    if "ill_center" in data:  # optional: a form or request that leaves it out keeps the current center
        raw_center = str(data.get("ill_center") or "").strip()
        center = None
        if raw_center:
            center = (
                Branch.objects.filter(library=library, pk=int(raw_center)).first()
                if raw_center.isdigit() and len(raw_center) < 10
                else None
            )
            if center is None or not center.is_checkout_center:
                errors["ill_center"] = [
                    "Choose one of the library's checkout centers for interlibrary-loan items, or leave it empty."
                ]
        ill["ill_center"] = center
    if "ill_loan_days" in data:
        raw_days = str(data.get("ill_loan_days") or "").strip() or "28"
        if not raw_days.isdigit() or not 1 <= int(raw_days) <= 365:
            errors["ill_loan_days"] = ["Enter the loan period in whole days, from 1 to 365, e.g. 28."]
        else:
            ill["ill_loan_days"] = int(raw_days)
    sip2: dict[str, Any] = {}
    # Both optional, like the NCIP settings: a caller that leaves one out keeps the current value (on a new
    # client: the model's default, PIN required and every extension field).
    if "patron_pin_required" in data:
        required = yes_or_no(data.get("patron_pin_required"))
        if required is None:
            errors["patron_pin_required"] = ["Say yes or no: must patrons give their PIN through this client?"]
        else:
            sip2["patron_pin_required"] = required
    if "sip2_extension_fields" in data:
        try:
            sip2["sip2_extension_fields"] = _extension_fields(data.get("sip2_extension_fields"))
        except ValueError as exc:
            errors["sip2_extension_fields"] = [f"{exc} Choose any of {', '.join(Sip2ExtensionField.values)}, or none."]
    enabled = flag(data.get("enabled", True))
    if errors:
        raise ValidationFailed(errors)
    return {
        "name": name,
        "login": login,
        "protocols": protocols,
        "allowed_networks": networks,
        "charset": charset,
        "enabled": bool(enabled),
        **ill,
        **sip2,
    }


def _extension_fields(value: object) -> list[str]:
    """The chosen SIP2 extension fields in their fixed order, from a list (a form's ticked boxes, JSON) or a
    text with commas or spaces; raises ValueError naming what is not one of them."""
    if isinstance(value, str):
        chosen = value.replace(",", " ").split()
    elif isinstance(value, list | tuple):
        chosen = [v.strip() if isinstance(v, str) else repr(v) for v in value]
    else:
        raise ValueError("Give the extra patron fields as a list.")
    unknown = [v for v in chosen if v not in Sip2ExtensionField.values]
    if unknown:
        raise ValueError(f"'{unknown[0][:20]}' is not an extra patron field Patronage sends.")
    return [f for f in Sip2ExtensionField.values if f in chosen]


def clients_of(library: Library | int) -> list[ProtocolClient]:
    library_id = library if isinstance(library, int) else library.pk
    return list(ProtocolClient.objects.filter(library_id=library_id))


def client_of(library: Library | int, client_id: object) -> ProtocolClient:
    """One client of ``library``; another library's client is not found, exactly like a missing one."""
    library_id = library if isinstance(library, int) else library.pk
    try:
        pk = int(str(client_id))
    except ValueError:
        raise NotFound("No such protocol client.") from None
    found = ProtocolClient.objects.filter(library_id=library_id, pk=pk).first()
    if found is None:
        raise NotFound("No such protocol client.")
    return found


def _audit_detail(client: ProtocolClient) -> dict[str, Any]:
    return {
        "client_id": client.pk,
        "client_name": client.name,
        "login": client.login,
        "protocols": list(client.protocols),
        "allowed_networks": list(client.allowed_networks),
        "enabled": client.enabled,
        "charset": client.charset,
        "ill_center_id": client.ill_center_id,
        "ill_loan_days": client.ill_loan_days,
        "patron_pin_required": client.patron_pin_required,
        "sip2_extension_fields": list(client.sip2_extension_fields),
    }


def create_client(*, actor: audit.Actor, library: Library, data: Mapping[str, Any]) -> tuple[ProtocolClient, str]:
    """Make a client; returns it and its secret, which is never shown again."""
    values = _validated(library, data, current=None)
    raw = _new_secret()
    now = clock.now()
    try:
        with transaction.atomic():
            client = ProtocolClient.objects.create(
                library=library, secret_digest=tokens.digest(raw), created_at=now, secret_set_at=now, **values
            )
            audit.record(actor, "protocol_client.create", library_id=library.pk, **_audit_detail(client))
    except IntegrityError:  # a concurrent create took the name or login between the check and the insert
        raise ValidationFailed({"login": ["This login or name was just taken; choose another."]}) from None
    return client, raw


def update_client(*, actor: audit.Actor, client: ProtocolClient, data: Mapping[str, Any]) -> ProtocolClient:
    values = _validated(client.library, data, current=client)
    try:
        with transaction.atomic():
            locked = ProtocolClient.objects.select_for_update().get(pk=client.pk)
            for name, value in values.items():
                setattr(locked, name, value)
            locked.save(update_fields=list(values))
            audit.record(actor, "protocol_client.update", library_id=locked.library_id, **_audit_detail(locked))
    except IntegrityError:
        raise ValidationFailed({"login": ["This login or name was just taken; choose another."]}) from None
    return locked


def reset_secret(*, actor: audit.Actor, client: ProtocolClient) -> str:
    """A new secret for the client (the old one stops working at once); returned once, never stored."""
    raw = _new_secret()
    with transaction.atomic():
        ProtocolClient.objects.filter(pk=client.pk).update(secret_digest=tokens.digest(raw), secret_set_at=clock.now())
        audit.record(
            actor, "protocol_client.secret_reset", library_id=client.library_id,
            client_id=client.pk, client_name=client.name,
        )  # fmt: skip
    throttle.clear(SCOPE, client.login)
    return raw


def _address_allowed(client: ProtocolClient, address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in client.allowed_networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def _audit_use(client: ProtocolClient | None, protocol: str, login: str, address: str | None, outcome: str) -> None:
    actor = audit.Actor(user=None, channel=AuditEvent.Channel.API if protocol == Protocol.REST else protocol,
                        source_ip=address)  # fmt: skip
    audit.record(
        actor, "protocol_client.authenticate", library_id=client.library_id if client else None,
        client_id=client.pk if client else None, client_name=client.name if client else "",
        login=login[:64], protocol=protocol, outcome=outcome,
    )  # fmt: skip


def record_sign_in(client: ProtocolClient, protocol: str, address: str | None) -> None:
    """The audit event of a successful sign-in (``authenticate_client`` writes it unless told otherwise)."""
    _audit_use(client, protocol, client.login, address, "ok")


_CLIENT_JOINS: tuple[rows.Join, ...] = ((ProtocolClient, "c"), (Library, "l"))


def _client_by(column: str, value: str) -> ProtocolClient | None:
    """The client (with its library) whose ``column`` is ``value``: one hand-written statement, since every
    NCIP request and every SIP2 login signs its client in (``rows``)."""
    alias = router.db_for_read(ProtocolClient)
    connection = connections[alias]
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {rows.select(connection, _CLIENT_JOINS).columns} FROM {quote(ProtocolClient._meta.db_table)} c"
        f" JOIN {quote(Library._meta.db_table)} l ON l.id = c.library_id"
        f" WHERE c.{quote(column)} = %s ORDER BY c.id LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    client, library = rows.instances(connection, alias, _CLIENT_JOINS, row)
    if not isinstance(client, ProtocolClient):  # pragma: no cover - the first of the joins is the client
        raise TypeError(client)
    ProtocolClient._meta.get_field("library").set_cached_value(client, library)
    return client


AUTHORIZATION_FORM = "Send 'Authorization: Basic <base64 of login:secret>' or 'Authorization: Bearer <secret>'."


class MalformedCredentials(ValueError):
    """An Authorization header that names Basic or Bearer but cannot be read; its text says how to fix it."""


def credentials_from_header(header: str | bytes, *, other_schemes: bool = False) -> tuple[str, str] | None:
    """(login, secret) from an HTTP ``Authorization`` header value, for ``authenticate_client``.

    ``Basic base64(login:secret)`` gives both; ``Bearer <secret>`` the secret alone, with the login "". No
    header gives None. A header of another scheme gives None when ``other_schemes`` (another sign-in, e.g.
    the API's staff tokens, may read it), else ``MalformedCredentials``, as does a Basic or Bearer header
    that cannot be read. The REST endpoints and the NCIP responder both read client credentials here.
    """
    # As the WSGI server gives it: bytes as ISO-8859-1, split on ASCII whitespace only.
    raw = header if isinstance(header, bytes) else header.encode("latin-1", errors="replace")
    parts = raw.split()
    if not parts:
        return None
    scheme = parts[0].lower()
    if scheme not in {b"basic", b"bearer"}:
        if other_schemes:
            return None
        raise MalformedCredentials(AUTHORIZATION_FORM)
    if len(parts) != 2:
        raise MalformedCredentials(AUTHORIZATION_FORM)
    try:
        if scheme == b"basic":
            login, _, secret = base64.b64decode(parts[1], validate=True).decode("utf-8").partition(":")
        else:
            login, secret = "", parts[1].decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedCredentials("The Authorization header is not valid base64 of login:secret.") from None
    if not secret or (scheme == b"basic" and not login):
        raise MalformedCredentials("Send both the client login and its secret.")
    return login, secret


def authenticate_client(
    protocol: str, login: str, secret: str, address: str | None, *, audit_success: bool = True
) -> ProtocolClient:
    """The enabled client with this login and secret, allowed ``protocol`` from ``address``; else an error.

    An empty ``login`` finds the client by its secret alone (a bearer secret). ``ClientAuthenticationFailed``
    never says which check failed (the audit log does, for administrators). Wrong guesses count against the
    login and the address (only the address when it is outside the client's networks); a standing lock
    refuses before the secret is looked at. Every refusal is
    audited; a success too, unless ``audit_success`` is False: the caller then records it itself, in the
    audit event of the request's work (naming the client) or, where there is none, with ``record_sign_in``.
    """
    login = (login or "").strip()[:64]
    keys = throttle.keys_for(f"client:{login}", address) if login else ([f"ip:{address}"] if address else [])
    lock, counted = throttle.lock_and_counted(SCOPE, keys) if keys else (None, set())
    if lock is not None:
        _audit_use(None, protocol, login, address, "locked")
        raise ClientLocked(lock)
    given = tokens.digest(secret or "")
    if login:
        client = _client_by("login", login)
    else:
        client = _client_by("secret_digest", given) if secret else None
    secret_ok = client is not None and hmac.compare_digest(given, client.secret_digest)
    if client is None or not secret_ok:
        outcome = "unknown_login" if client is None else "wrong_secret"
    elif not client.enabled:
        outcome = "disabled"
    elif protocol not in client.protocols:
        outcome = "protocol_not_allowed"
    elif not _address_allowed(client, address):
        outcome = "address_not_allowed"
    else:
        outcome = "ok"
    if outcome != "ok" or client is None:
        _audit_use(client, protocol, login, address, outcome)
        # Only a wrong guess counts towards the lock: a right secret from a wrong place is a set-up mistake.
        # A guess from outside the client's own networks counts against that address only, so nobody who
        # merely knows a login (SIP2 sends it in clear) can lock the real machine out from elsewhere.
        if outcome == "wrong_secret" and client is not None and not _address_allowed(client, address):
            keys = [k for k in keys if k.startswith("ip:")]
        if outcome in {"unknown_login", "wrong_secret"} and keys:
            lock = throttle.record_failure(SCOPE, keys)
            if lock is not None:
                raise ClientLocked(lock)
        raise ClientAuthenticationFailed()
    now = clock.now()
    account = f"client:{client.login}"
    # The reset is a write: only when this login has failures counted (or when the login was not given, so
    # they were not read).
    if not login or throttle.keys_for(account, None)[0] in counted:
        throttle.record_success(SCOPE, account)
    if audit_success:
        record_sign_in(client, protocol, address)
    if client.last_used_at is None or now - client.last_used_at > _LAST_USED_RESOLUTION:
        ProtocolClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client


def clear_lock(*, actor: audit.Actor, client: ProtocolClient) -> int:
    """Administrators lift a client's lock-out."""
    with transaction.atomic():
        cleared = throttle.clear(SCOPE, f"client:{client.login}")
        audit.record(actor, "protocol_client.unlock", library_id=client.library_id, client_id=client.pk)
    return cleared
