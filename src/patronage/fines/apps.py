from django.apps import AppConfig


class FinesConfig(AppConfig):
    name = "patronage.fines"
    label = "fines"

    def ready(self) -> None:
        from patronage.patrons.deletion import DeletionObstacle, register_guard

        from . import queries

        def debts(patron):  # type: ignore[no-untyped-def]
            owed = queries.balance(patron.pk)
            if owed > 0:
                return [DeletionObstacle("has_debts", f"The patron owes {owed} {patron.library.currency}.")]
            return []

        register_guard("fines", debts)
