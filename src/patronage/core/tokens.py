"""Tokens kept only as a salt and a digest: a password link, a calendar feed address, a client secret.

The token is rebuilt from the row's random salt with an HMAC under the site's secret key (``salted_token``),
so it can be e-mailed later without being stored; ``digest`` (SHA-256) is what the row keeps to find it.
"""

from __future__ import annotations

import hashlib
from base64 import urlsafe_b64encode

from django.utils.crypto import salted_hmac


def salted_token(key_salt: str, salt: str) -> str:
    """The URL-safe token for ``salt`` under the purpose ``key_salt`` (an HMAC-SHA256 with the secret key)."""
    mac = salted_hmac(key_salt, salt, algorithm="sha256").digest()
    return urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def digest(token: str) -> str:
    """The SHA-256 of ``token`` in hex: what is stored and looked up in place of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
