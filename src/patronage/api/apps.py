from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "patronage.api"
    label = "api"

    def ready(self) -> None:
        from patronage.core import periodic

        from . import tasks

        periodic.register(tasks.purge_idempotency_keys, order=90)  # housekeeping, after the domain's jobs
