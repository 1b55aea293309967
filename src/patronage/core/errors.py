"""Errors shared by every domain. Faces translate them; they never hold user-facing HTML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    """Base for expected refusals. ``code`` is stable: API clients and logs depend on it."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class FieldError(DomainError):
    """One field's value is wrong; ``message`` says what to fix."""

    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    @property
    def errors(self) -> dict[str, list[str]]:
        return {self.field: [self.message]}


class ValidationFailed(DomainError):
    """Several fields are wrong at once; nothing was written."""

    code = "invalid"

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        first = next(iter(self.errors.items()), ("", [""]))
        super().__init__(f"{first[0]}: {first[1][0]}" if first[0] else "Invalid input.")


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it exists (same answer)."""

    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class PermissionDenied(DomainError):
    """The caller can see the thing but lacks the permission for this action."""

    code = "permission_denied"
    status = 403


class Refused(DomainError):
    """A rule refuses the action; ``reasons`` lists every reason (code, message)."""

    code = "refused"
    status = 409

    def __init__(self, message: str, reasons: Sequence[Mapping[str, str]]) -> None:
        super().__init__(message)
        self.reasons = [dict(r) for r in reasons]
