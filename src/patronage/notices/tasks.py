"""The reminder-notice job as a background task; the worker's clock queues it with the lending jobs."""

from __future__ import annotations

from django_tasks import task

from . import services


@task()
def reminder_notices() -> list[int]:
    return services.run_job()
