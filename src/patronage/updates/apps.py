from __future__ import annotations

from django.apps import AppConfig


class UpdatesConfig(AppConfig):
    name = "patronage.updates"
    label = "updates"
    verbose_name = "Online account updates"

    def ready(self) -> None:
        from patronage.standing.facts import register_fact

        from . import queries

        # A pending update request places ``verification_pending`` (standing's table says what it forbids).
        register_fact("verification_pending", queries.verification_pending_sql)
