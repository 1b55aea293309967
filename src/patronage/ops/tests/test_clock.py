from __future__ import annotations

import threading

import pytest
from django_tasks_db.models import DBTaskResult

from patronage.ops import clock

pytestmark = pytest.mark.django_db


def test_each_tick_queues_every_lending_job_once() -> None:
    names = clock.enqueue_periodic_jobs()
    assert names == ["mark_late", "invoice_overdue", "release_no_shows"]
    queued = sorted(DBTaskResult.objects.values_list("task_path", flat=True))
    assert len(queued) == 3
    assert all(path.startswith("patronage.circulation.tasks.") for path in queued)


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
