from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "patronage.outbox"
    label = "outbox"
    verbose_name = "E-mail outbox"

    def ready(self) -> None:
        from patronage.core import periodic

        from . import tasks

        periodic.register(tasks.send_outbox, beat=periodic.FAST)
