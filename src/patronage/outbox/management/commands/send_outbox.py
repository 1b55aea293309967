"""Send the e-mail outbox's due messages once, now (for a system timer when the worker's clock is off)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from patronage.outbox import services, tasks


class Command(BaseCommand):
    help = "Send the outbox messages that are due, once (safe to repeat and to run beside the worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--enqueue", action="store_true", help="Queue the sender for the worker instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["enqueue"]:
            tasks.send_outbox.enqueue()
            self.stdout.write("send_outbox: queued")
            return
        report = services.send_due()
        self.stdout.write(f"sent: {len(report.sent)}, retrying: {len(report.retrying)}, failed: {len(report.failed)}")
        if report.stopped:
            self.stderr.write(f"stopped early, the mail server could not be reached: {report.stopped}")
