"""The institution's LDAP directory: find a person's entry and check their password by binding as it.

Only ``services.authenticate`` calls this module. It knows nothing of patrons, lock-outs or messages:
it answers with an ``Entry`` (saying whether the password is right), ``None`` (no such person or an
ambiguous name) or raises ``Unavailable`` when no server of the directory answered in time, or the
search account itself was refused, so that the caller can tell the patron that the service is down
instead of counting a failure against them.

Every value typed by a patron goes into a filter through ``escape_filter_chars``, so ``*``, ``(`` and
``\\`` are matched literally and cannot widen the search (LDAP injection).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from ldap3 import NONE, SIMPLE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

log = logging.getLogger(__name__)

# More than one entry for a name is ambiguous; reading two is enough to know.
_SIZE_LIMIT = 2


class Unavailable(Exception):
    """No server of the directory answered, or it refused the search account: nobody can sign in now."""


@dataclass(frozen=True)
class Config:
    """What the directory calls need, copied out of the library's ``InstitutionSignIn``."""

    server_uris: Sequence[str]
    bind_dn: str
    bind_password: str
    search_base: str
    id_attribute: str
    login_attribute: str
    extra_filter: str = ""
    start_tls: bool = False
    timeout_seconds: int = 5  # whole seconds: ldap3 packs the receive timeout as an integer
    # Trust store for ldaps:// and StartTLS; None: the system's.
    ca_file: str | None = field(default=None)


@dataclass(frozen=True)
class Entry:
    """The directory entry a name found, with its institution id ("" when it has none), and whether the
    password bound as it. The entry is returned for a wrong password too, so that the failure can be
    counted against the patron it belongs to."""

    dn: str
    institution_id: str
    password_ok: bool


def search_filter(config: Config, names: Sequence[str]) -> str:
    """The filter that finds the entry: the login attribute or the id attribute equal to any of ``names``."""
    alternatives = "".join(
        f"({attribute}={escape_filter_chars(name)})"
        for name in dict.fromkeys(n for n in names if n)
        for attribute in dict.fromkeys((config.login_attribute, config.id_attribute))
    )
    found = f"(|{alternatives})"
    extra = config.extra_filter.strip()
    if extra:
        if not extra.startswith("("):
            extra = f"({extra})"
        return f"(&{found}{extra})"
    return found


def _server(config: Config, uri: str) -> Server:
    tls = None
    if uri.lower().startswith("ldaps://") or config.start_tls:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file)
    # ldap3 takes scheme://host:port only: a trailing "/" (RFC 4516's empty DN) would read as the port.
    return Server(uri.rstrip("/"), get_info=NONE, connect_timeout=config.timeout_seconds, tls=tls)


def _connect(config: Config, server: Server, user: str | None, password: str | None) -> Connection:
    """An open connection bound as ``user`` (anonymous when None). Raises ldap3's errors as they come."""
    connection = Connection(
        server,
        user=user,
        password=password,
        authentication=SIMPLE if user else None,
        receive_timeout=config.timeout_seconds,
        raise_exceptions=False,
        read_only=True,
    )
    connection.open()
    if config.start_tls and not server.ssl:
        connection.start_tls()
    return connection


_DOWN = (ldap_errors.LDAPCommunicationError, ldap_errors.LDAPSocketOpenError, ldap_errors.LDAPStartTLSError,
         ldap_errors.LDAPSessionTerminatedByServerError, ldap_errors.LDAPSocketReceiveError,
         ldap_errors.LDAPResponseTimeoutError, ldap_errors.LDAPInvalidServerError,
         ldap_errors.LDAPInvalidPortError, ssl.SSLError, OSError)  # fmt: skip


def check_password(config: Config, names: Sequence[str], password: str) -> Entry | None:
    """The one entry named by any of ``names`` (None for none or several), and whether ``password`` is its
    password.

    The servers are tried in order; one that does not answer within the timeout is passed over.
    """
    if not any(names):
        return None
    problems: list[str] = []
    for uri in config.server_uris:
        try:
            server = _server(config, uri)
            return _check_at(config, server, names, password)
        except _DOWN as exc:
            problems.append(f"{uri}: {type(exc).__name__}: {exc}")
            continue
    log.warning("institution directory not answering: %s", "; ".join(problems) or "no server configured")
    raise Unavailable("; ".join(problems))


def _check_at(config: Config, server: Server, names: Sequence[str], password: str) -> Entry | None:
    searcher = _connect(config, server, config.bind_dn or None, config.bind_password or None)
    try:
        if not searcher.bind():
            # The library's own search account was refused: a configuration problem, not the patron's.
            log.error("institution directory refused the search account: %s", searcher.result)
            raise Unavailable(f"search bind refused: {searcher.result.get('description')}")
        searcher.search(
            config.search_base,
            search_filter(config, names),
            attributes=[config.id_attribute],
            size_limit=_SIZE_LIMIT,
            time_limit=max(1, int(config.timeout_seconds)),
        )
        entries = list(searcher.entries)
    finally:
        searcher.unbind()
    if len(entries) != 1:
        return None
    entry = entries[0]
    values = entry.entry_attributes_as_dict.get(config.id_attribute) or []
    institution_id = str(values[0]) if values else ""
    if not password:
        # An empty password would be an "unauthenticated bind", which some servers accept as success.
        return Entry(dn=entry.entry_dn, institution_id=institution_id, password_ok=False)
    person = _connect(config, server, entry.entry_dn, password)
    try:
        bound = bool(person.bind())
    finally:
        person.unbind()
    return Entry(dn=entry.entry_dn, institution_id=institution_id, password_ok=bound)
