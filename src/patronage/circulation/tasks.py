"""The lending jobs as background tasks (``patronage worker`` runs them from the database queue).

The worker's clock (``patronage.ops.clock``) enqueues them every few minutes; a cron or systemd timer
may do so instead, or run ``manage.py run_lending_jobs`` directly. Each is idempotent, so an extra or overlapping run does no harm.
"""

from __future__ import annotations

from django_tasks import task

from . import services


@task()
def mark_late() -> list[int]:
    return services.run_job("mark_late")


@task()
def invoice_overdue() -> list[int]:
    return services.run_job("invoice_overdue")


@task()
def release_no_shows() -> list[int]:
    return services.run_job("release_no_shows")


@task()
def anonymise_history() -> list[int]:
    return services.run_job("anonymise_history")


# In the order a run takes them: a checkout is marked late before it is invoiced, and history is
# anonymised last, after the jobs that may still act on it.
ALL = (mark_late, invoice_overdue, release_no_shows, anonymise_history)
