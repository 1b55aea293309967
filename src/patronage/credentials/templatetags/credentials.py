"""``{% sign_in_state patron as state %}``: the patron's portal sign-in as the staff patron page shows it."""

from __future__ import annotations

from django import template

from patronage.patrons.models import Patron

from .. import services

register = template.Library()


@register.simple_tag
def sign_in_state(patron: Patron) -> services.SignInState:
    return services.sign_in_state(patron)
