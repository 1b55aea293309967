"""``patronage sip2``: run the SIP2 server until SIGTERM or Ctrl-C, then finish open requests and stop.

``--processes N`` (or ``PATRONAGE_SIP2_PROCESSES``) forks N server processes sharing the port through
``SO_REUSEPORT``: the kernel spreads new connections over them, so more than one core serves SIP2 (each
process is bound by Python's global interpreter lock). SIGTERM to the first process stops them all. By default there is one process per core.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from patronage.core.database import use_prepared_statements
from patronage.sip2.server import from_settings


class Command(BaseCommand):
    # The SIP2 process serves no URLs: a problem in a web face's URLconf must not keep kiosks offline.
    requires_system_checks: list[str] = []
    help = "Run the SIP2 server (self-check machines, e-book vendors). Settings: PATRONAGE_SIP2_*."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", help="host:port to listen on (default: PATRONAGE_SIP2_BIND, 127.0.0.1:6001)")
        parser.add_argument(
            "--processes",
            type=int,
            help="server processes sharing the port (default PATRONAGE_SIP2_PROCESSES: one per core)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        if options.get("bind"):
            settings.PATRONAGE_SIP2_BIND = options["bind"]
        if getattr(settings, "PATRONAGE_SIP2_PREPARED_STATEMENTS", True):
            use_prepared_statements()
        wanted = options.get("processes") or settings.PATRONAGE_SIP2_PROCESSES
        processes = max(1, int(str(wanted)))
        children: list[int] = []
        for _ in range(processes - 1):
            pid = os.fork()  # before any database connection is opened: each child opens its own
            if pid == 0:
                self._serve(reuse_port=True, announce=False)
                os._exit(0)
            children.append(pid)
        try:
            self._serve(reuse_port=processes > 1, announce=True)
        finally:
            for pid in children:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
            for pid in children:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    continue

    def _serve(self, *, reuse_port: bool, announce: bool) -> None:
        server = from_settings()
        server.reuse_port = reuse_port
        host, port = server.start()
        if announce:
            self.stdout.write(
                f"SIP2 server on {host}:{port}{' with TLS' if server.ssl_context else ''}; Ctrl-C stops it."
            )
            self.stdout.flush()
        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        while not stop.wait(1.0):
            pass
        if announce:
            self.stdout.write("Stopping: finishing open requests.")
        server.shutdown()
