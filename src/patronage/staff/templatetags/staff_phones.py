"""Phone numbers as staff read them: ``{{ number|phone_display:patron.library.country }}``.

The stored form stays E.164 (or the text as typed when phone validation was off at entry); the pages show
the national format of the library's country, the international one for another country's number.
"""

from __future__ import annotations

from django import template

from patronage.patrons.validation import display_phone

register = template.Library()


@register.filter
def phone_display(number: str | None, country: str) -> str:
    return display_phone(str(number or ""), str(country or ""))
