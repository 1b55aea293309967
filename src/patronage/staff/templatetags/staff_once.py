"""``{% form_token %}``: the hidden one-time token of a creating form (see ``patronage.staff.once``)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import once

register = template.Library()


@register.simple_tag(takes_context=True)
def form_token(context: dict[str, Any]) -> SafeString:
    request = context.get("request")
    if request is None or not hasattr(request, "session"):
        return SafeString("")
    return format_html('<input type="hidden" name="{}" value="{}">', once.FIELD, once.issue(request))
