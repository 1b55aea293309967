"""Queue the reminder notices once, now (almost overdue, overdue, invoices, record expiry, inactive)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from patronage.notices import services, tasks


class Command(BaseCommand):
    help = "Queue every due reminder notice on the outbox, once (safe to repeat: each notice goes once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--enqueue", action="store_true", help="Queue the job for the worker instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["enqueue"]:
            tasks.reminder_notices.enqueue()
            self.stdout.write("reminder_notices: queued")
            return
        self.stdout.write(f"reminder notices queued: {len(services.run_job())}")
