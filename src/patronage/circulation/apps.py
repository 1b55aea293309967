from __future__ import annotations

from django.apps import AppConfig


class CirculationConfig(AppConfig):
    name = "patronage.circulation"
    label = "circulation"

    def ready(self) -> None:
        from patronage.patrons.deletion import DeletionObstacle, register_guard
        from patronage.patrons.models import Patron
        from patronage.standing.facts import register_fact

        from . import queries

        def open_checkouts(patron: Patron) -> list[DeletionObstacle]:
            count = queries.open_checkout_count(patron.pk)
            if count:
                return [
                    DeletionObstacle(
                        "has_open_checkouts",
                        f"The patron holds {count} checkout(s) not yet returned; check the resources in first.",
                    )
                ]
            return []

        register_guard("circulation", open_checkouts)
        from patronage.core import periodic

        from . import tasks

        # In the order a run takes them: a checkout is marked late before it is invoiced.
        for order, job in enumerate(tasks.ALL, start=10):
            periodic.register(job, order=order)
        register_fact("late_checkouts", queries.late_checkouts_sql)
        register_fact("overdue_owed", queries.overdue_owed_sql)
