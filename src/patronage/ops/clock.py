"""The worker's own clock: it queues the periodic jobs, so they run without cron or a timer.

``patronage worker`` starts it beside the task worker. Every ``PATRONAGE_JOBS_INTERVAL_SECONDS``
(default 300; 0 turns the clock off, e.g. when a system timer queues the jobs instead) it queues each
periodic job once. The jobs are idempotent, so several workers each running a clock, or a clock plus a
timer, only repeat work that finds nothing left to do.
"""

from __future__ import annotations

import logging
import os
import threading

from django.db import close_old_connections

logger = logging.getLogger(__name__)
DEFAULT_INTERVAL_SECONDS = 300


def interval_seconds() -> int:
    text = os.environ.get("PATRONAGE_JOBS_INTERVAL_SECONDS", str(DEFAULT_INTERVAL_SECONDS)).strip()
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"PATRONAGE_JOBS_INTERVAL_SECONDS must be a whole number of seconds, not {text!r}.") from None
    if value < 0:
        raise SystemExit("PATRONAGE_JOBS_INTERVAL_SECONDS must be 0 (off) or more.")
    return value


def enqueue_periodic_jobs() -> list[str]:
    """Queue every periodic job once; returns their names."""
    from patronage.circulation import tasks

    queued = []
    for job in tasks.ALL:
        job.enqueue()
        queued.append(job.name)
    return queued


def _run(interval: int, stop: threading.Event) -> None:
    while True:
        try:
            names = enqueue_periodic_jobs()
            logger.info("queued periodic jobs: %s", ", ".join(names))
        except Exception:  # a failed tick must not stop the clock; the next tick tries again
            logger.exception("could not queue the periodic jobs")
        finally:
            close_old_connections()
        if stop.wait(interval):
            return


def start(interval: int | None = None) -> threading.Event | None:
    """Start the clock in a daemon thread (Django must be set up). Returns an event that stops it."""
    seconds = interval_seconds() if interval is None else interval
    if seconds == 0:
        logger.info("periodic jobs clock is off (PATRONAGE_JOBS_INTERVAL_SECONDS=0)")
        return None
    stop = threading.Event()
    threading.Thread(target=_run, args=(seconds, stop), name="patronage-clock", daemon=True).start()
    return stop
