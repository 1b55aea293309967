"""The client's address, as recorded in the audit log and counted by the failed-credential lock-out.

Without trusted proxies it is the peer address (``REMOTE_ADDR``). Behind a reverse proxy the peer is
the proxy, so ``PATRONAGE_TRUSTED_PROXIES`` names the proxies (addresses or networks); when the peer is
one of them, ``X-Forwarded-For`` is read from the right, skipping trusted hops, and the first address
that is not a trusted proxy is the client. Entries a client wrote further left are never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in spec if entry.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(meta: Mapping[str, Any]) -> str | None:
    peer = _address(str(meta.get("REMOTE_ADDR") or ""))
    if peer is None:
        return None
    trusted = _networks(tuple(getattr(settings, "PATRONAGE_TRUSTED_PROXIES", ())))
    if not trusted or not any(peer in net for net in trusted):
        return str(peer)
    hops = [h for h in str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return str(peer)  # a malformed entry: stop believing the chain
        if not any(address in net for net in trusted):
            return str(address)
    return str(peer)
