"""The worker's clock queues the outbox sender on its own beat and the reminder job with the lending jobs."""

from __future__ import annotations

import pytest
from django_tasks_db.models import DBTaskResult

from patronage.ops import clock

pytestmark = pytest.mark.django_db


def test_the_mail_beat_queues_the_sender_and_the_jobs_beat_the_reminders() -> None:
    assert clock.enqueue_outbox_sender() == ["send_outbox"]
    assert list(DBTaskResult.objects.values_list("task_path", flat=True)) == ["patronage.outbox.tasks.send_outbox"]
    names = clock.enqueue_periodic_jobs()
    assert "reminder_notices" in names
    assert names.index("mark_late") < names.index("reminder_notices")  # lateness is known before reminders
    assert DBTaskResult.objects.filter(task_path="patronage.notices.tasks.reminder_notices").count() == 1


def test_the_outbox_interval_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRONAGE_OUTBOX_INTERVAL_SECONDS", "-1")
    with pytest.raises(SystemExit, match="PATRONAGE_OUTBOX_INTERVAL_SECONDS must be 0"):
        clock.interval_seconds("PATRONAGE_OUTBOX_INTERVAL_SECONDS", clock.DEFAULT_OUTBOX_INTERVAL_SECONDS)
