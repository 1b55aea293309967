from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "patronage.notices"
    label = "notices"
    verbose_name = "Reminder notices"

    def ready(self) -> None:
        from patronage.core import periodic

        from . import tasks

        # After the lending jobs, so a checkout marked late this tick is reminded of as overdue.
        periodic.register(tasks.reminder_notices, order=50)
