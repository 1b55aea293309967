"""The kinds of notice the reminder job sends, and which of them a patron may opt out of. Plain Python."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    # The patron field that records an opt-out, or "" when nobody may opt out of this kind.
    opt_out_field: str = ""

    @property
    def optional(self) -> bool:
        return bool(self.opt_out_field)


ALMOST_OVERDUE = Kind("almost_overdue", "Almost overdue", "opt_out_almost_overdue")
RECORD_EXPIRATION = Kind("record_expiration", "Patron record expiration", "opt_out_record_expiration")
INACTIVE = Kind("inactive", "Inactive patron", "opt_out_inactive")
OVERDUE = Kind("overdue", "Overdue")
INVOICE = Kind("invoice", "Invoice for a late return")

ALL = (ALMOST_OVERDUE, RECORD_EXPIRATION, INACTIVE, OVERDUE, INVOICE)
OPTIONAL = tuple(k for k in ALL if k.optional)
BY_CODE = {k.code: k for k in ALL}


def skipped(kind: Kind, *, library_allows: frozenset[str], patron_opted_out: bool) -> bool:
    """Is this notice left out? Only when the library lets patrons opt out of the kind and this one did."""
    return kind.optional and kind.code in library_allows and patron_opted_out
