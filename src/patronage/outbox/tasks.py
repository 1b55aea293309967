"""The outbox sender as a background task. The worker's clock queues it every minute or so
(``PATRONAGE_OUTBOX_INTERVAL_SECONDS``) and ``enqueue`` queues it after a commit, so new mail goes soon."""

from __future__ import annotations

from django_tasks import task

from . import services


@task()
def send_outbox() -> dict[str, int]:
    report = services.send_due()
    return {"sent": len(report.sent), "retrying": len(report.retrying), "failed": len(report.failed)}
