from __future__ import annotations

import threading

import pytest
from django_tasks_db.models import DBTaskResult

from patronage.ops import clock

pytestmark = pytest.mark.django_db


def test_each_tick_queues_every_registered_job_once_in_order() -> None:
    names = clock.enqueue_periodic_jobs()
    # The lending jobs first, in the order a run takes them, then reminders, then housekeeping.
    assert names == [
        "mark_late", "invoice_overdue", "release_no_shows", "anonymise_history", "reminder_notices",
        "purge_idempotency_keys",
    ]  # fmt: skip
    queued = sorted(DBTaskResult.objects.values_list("task_path", flat=True))
    assert len(queued) == len(names)
    assert clock.enqueue_outbox_sender() == ["send_outbox"]


def test_registering_a_job_twice_queues_it_once() -> None:
    from patronage.circulation import tasks
    from patronage.core import periodic

    periodic.register(tasks.mark_late)
    assert clock.enqueue_periodic_jobs().count("mark_late") == 1
    with pytest.raises(ValueError, match="unknown beat"):
        periodic.register(tasks.mark_late, beat="hourly")


def test_the_interval_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRONAGE_JOBS_INTERVAL_SECONDS", "soon")
    with pytest.raises(SystemExit, match="whole number"):
        clock.interval_seconds()
    monkeypatch.setenv("PATRONAGE_JOBS_INTERVAL_SECONDS", "0")
    assert clock.start() is None


def test_a_stopped_clock_ticks_once_and_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks: list[int] = []

    def tick() -> list[str]:
        ticks.append(1)
        return []

    monkeypatch.setattr(clock, "enqueue_periodic_jobs", tick)
    stop = threading.Event()
    stop.set()
    clock._run(3600, stop)
    assert ticks == [1]
