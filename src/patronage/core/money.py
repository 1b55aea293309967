"""Money amounts: ``Decimal`` in a library's currency, never float.

Amounts are parsed from user input by ``parse_amount``, which refuses negative, zero (unless
allowed), non-numeric and over-precise values with a message that says what to fix.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from .errors import FieldError

# ISO 4217 currencies without minor units. Amounts are stored with two decimal places, so
# currencies with three (BHD, KWD, ...) are not supported; see docs/decisions.
_MINOR_UNITS = {"CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0, "XAF": 0, "XOF": 0}
MAX_AMOUNT = Decimal("1000000")
ZERO = Decimal("0")


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def parse_amount(value: object, currency: str, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    """Turn user input into an exact positive amount of ``currency`` or raise ``FieldError``."""
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise FieldError(field, f"Enter an amount such as 2.50, not {str(value)[:20]!r}.") from None
    if not amount.is_finite():
        raise FieldError(field, "Enter a finite amount such as 2.50.")
    places = minor_units(currency)
    if amount != amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN):
        raise FieldError(field, f"{currency} amounts have at most {places} decimal places.")
    if amount < 0:
        raise FieldError(field, "Enter a positive amount; the ledger records direction by its entry type.")
    if amount == 0 and not allow_zero:
        raise FieldError(field, "Enter an amount greater than zero.")
    if amount >= MAX_AMOUNT:
        raise FieldError(field, f"Enter an amount below {MAX_AMOUNT:,}.")
    return amount.quantize(quantum(currency))


def format_amount(amount: Decimal, currency: str) -> str:
    return f"{amount.quantize(quantum(currency)):,} {currency}"
