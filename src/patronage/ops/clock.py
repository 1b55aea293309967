"""The worker's own clock: it queues the periodic jobs, so they run without cron or a timer.

``patronage worker`` starts it beside the task worker. Every ``PATRONAGE_JOBS_INTERVAL_SECONDS``
(default 300; 0 turns the clock off, e.g. when a system timer queues the jobs instead) it queues each
periodic job once: the jobs each app registered at start-up (``patronage.core.periodic``), in their order. The jobs are idempotent, so several workers each running a clock, or a clock plus a
timer, only repeat work that finds nothing left to do.

A second, faster beat queues the e-mail outbox sender every ``PATRONAGE_OUTBOX_INTERVAL_SECONDS``
(default 60; 0 turns it off), so messages that wait for a retry go out on time. With
``PATRONAGE_JOBS_INTERVAL_SECONDS=0`` the whole clock is off, both beats: the timer that then queues the
jobs runs ``manage.py send_outbox`` too. New messages do not
wait for it: queuing one wakes the sender after its transaction commits.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from django.db import close_old_connections

from patronage.core import periodic

logger = logging.getLogger(__name__)
DEFAULT_INTERVAL_SECONDS = 300
DEFAULT_OUTBOX_INTERVAL_SECONDS = 60


def interval_seconds(name: str = "PATRONAGE_JOBS_INTERVAL_SECONDS", default: int = DEFAULT_INTERVAL_SECONDS) -> int:
    text = os.environ.get(name, str(default)).strip()
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number of seconds, not {text!r}.") from None
    if value < 0:
        raise SystemExit(f"{name} must be 0 (off) or more.")
    return value


def enqueue_periodic_jobs() -> list[str]:
    """Queue every job of the slow beat once (the apps register them; ``core.periodic``); returns their names."""
    return periodic.enqueue(periodic.SLOW)


def enqueue_outbox_sender() -> list[str]:
    """Queue the jobs of the fast beat once: the e-mail outbox sender."""
    return periodic.enqueue(periodic.FAST)


def _run(interval: int, stop: threading.Event, tick: Callable[[], list[str]] | None = None) -> None:
    while True:
        try:
            names = tick() if tick is not None else enqueue_periodic_jobs()
            logger.info("queued periodic jobs: %s", ", ".join(names))
        except Exception:  # a failed tick must not stop the clock; the next tick tries again
            logger.exception("could not queue the periodic jobs")
        finally:
            close_old_connections()
        if stop.wait(interval):
            return


def start(interval: int | None = None, outbox_interval: int | None = None) -> threading.Event | None:
    """Start the clock's beats in daemon threads (Django must be set up). Returns an event that stops them."""
    seconds = interval_seconds() if interval is None else interval
    mail_seconds = (
        interval_seconds("PATRONAGE_OUTBOX_INTERVAL_SECONDS", DEFAULT_OUTBOX_INTERVAL_SECONDS)
        if outbox_interval is None
        else outbox_interval
    )
    if seconds == 0:
        logger.info("periodic jobs clock is off (PATRONAGE_JOBS_INTERVAL_SECONDS=0), the outbox beat too")
        return None
    stop = threading.Event()
    threading.Thread(
        target=_run, args=(seconds, stop, enqueue_periodic_jobs), name="patronage-clock", daemon=True
    ).start()
    if mail_seconds == 0:
        logger.info("outbox sender beat is off (PATRONAGE_OUTBOX_INTERVAL_SECONDS=0)")
    else:
        beat = threading.Thread(
            target=_run, args=(mail_seconds, stop, enqueue_outbox_sender), name="patronage-mail-clock", daemon=True
        )
        beat.start()
    return stop
