"""Run the lending jobs once, now: late marking, overdue invoices, no-show release, history anonymisation."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from patronage.circulation import tasks


class Command(BaseCommand):
    help = (
        "Mark late checkouts, raise overdue invoices, release no-shows and anonymise old lending history, "
        "once (safe to repeat)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--enqueue", action="store_true", help="Queue them for the worker instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        for job in tasks.ALL:
            if options["enqueue"]:
                job.enqueue()
                self.stdout.write(f"{job.name}: queued")
            else:
                done = job.call()
                self.stdout.write(f"{job.name}: {len(done)}")
