from __future__ import annotations

from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "patronage.tickets"
    label = "tickets"
    verbose_name = "Tickets (Report a Problem)"
