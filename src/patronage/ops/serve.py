"""Run gunicorn in-process with the production settings (the same in ``make run`` and production)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from patronage.wsgi import application

        return application


def default_workers() -> int:
    """One worker per core this process may run on, plus one: the pages spend their time on the CPU (templates,
    queries, password hashes), so more workers than cores only share the cores and lengthen the slowest
    answers (docs/performance.md, "Portal under load": 3 workers on 2 cores kept every page's p95 under
    150 ms where 5 did not)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return cores + 1


def serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="patronage serve")
    parser.add_argument("--bind", default=os.environ.get("PATRONAGE_BIND", "127.0.0.1:8000"))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or default_workers()))
    parser.add_argument("--timeout", type=int, default=30)
    args = parser.parse_args(argv)
    _Server(
        {
            "bind": args.bind,
            "workers": args.workers,
            "timeout": args.timeout,
            "accesslog": "-",
            "control_socket_disable": True,
        }
    ).run()
