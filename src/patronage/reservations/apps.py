from __future__ import annotations

from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    name = "patronage.reservations"
    label = "reservations"

    def ready(self) -> None:
        from patronage.patrons.deletion import DeletionObstacle, register_guard
        from patronage.patrons.models import Patron
        from patronage.resources.commitments import register_finder

        from . import queries

        def open_reservations(patron: Patron) -> list[DeletionObstacle]:
            count = queries.open_reservations_by_patron(patron.pk)
            if count:
                return [
                    DeletionObstacle(
                        "has_open_reservations",
                        f"The patron has {count} open reservation(s) (pending, reserved or checked out); "
                        "cancel them or check the resources in first.",
                    )
                ]
            return []

        register_guard("reservations", open_reservations)
        register_finder("reservations", queries.holders)
