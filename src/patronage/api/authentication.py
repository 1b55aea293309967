"""Bearer-token sign-in for the REST API, counted against the shared failed-credential lock-out."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from patronage.core import net, throttle

from .models import ApiToken
from .tokens import user_for_token

SCOPE = "api"


def client_ip(request: Request) -> str | None:
    return net.client_ip(request.META)


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer pat_…``. Wrong tokens count per client address; a locked address gets 429."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the header as 'Authorization: Bearer <token>', with no spaces in the token."
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raw = ""
        address = client_ip(request)
        keys = [f"ip:{address}"] if address else []
        lock = throttle.current_lock(SCOPE, keys) if keys else None
        if lock is not None:
            raise exceptions.Throttled(
                wait=lock.retry_after_seconds, detail="Too many wrong tokens from this address; try again later."
            )
        found = user_for_token(raw) if raw else None
        if found is None:
            if keys:
                throttle.record_failure(SCOPE, keys)
            raise exceptions.AuthenticationFailed(
                "The token is unknown, revoked or expired, or its account is inactive."
            )
        return found

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="patronage"'


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "patronage.api.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API token (pat_…) from My API tokens."}
