"""``patronage demo [--once]``: load the demo consortium (two libraries, staff sign-ins, patrons)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from patronage.ops import demo


class Command(BaseCommand):
    help = "Load the demo libraries, staff sign-ins and patrons (never twice)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="Do nothing, successfully, when the demo data is already there (used by `make run`).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if demo.exists():
            self._already_there(once=options["once"])
            return
        started = time.perf_counter()
        try:
            summary = demo.load()
        except IntegrityError:
            # Another process loaded it between our check and our insert.
            self._already_there(once=options["once"])
            return
        seconds = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded in {seconds:.1f} s: {summary.libraries} libraries, {summary.branches} branches, "
                f"{summary.patrons} patrons, {summary.fees} fees, {summary.payments} payments, "
                f"{summary.waivers} waivers, {summary.blocks} blocks, {summary.resources} resources, "
                f"{summary.reservations} reservations."
            )
        )
        self.stdout.write("Staff sign-ins at /staff/ (demo passwords; see docs/demo.md):")
        width = max(len(s.username) for s in summary.sign_ins)
        for sign_in in summary.sign_ins:
            self.stdout.write(f"  {sign_in.username:<{width}}  {sign_in.password:<22}  {sign_in.description}")
        self.stdout.write("Patron sign-ins at /portal/<library>/ (Person-ID and password):")
        for patron in summary.portal_sign_ins:
            self.stdout.write(
                f"  {patron.library:<10}  {patron.identifier:<9}  {patron.password:<18}  {patron.name}: {patron.description}"
            )

    def _already_there(self, *, once: bool) -> None:
        codes = " and ".join(demo.DEMO_LIBRARY_CODES)
        if once:
            self.stdout.write(f"The demo data is already there (libraries {codes}); nothing to do.")
            return
        raise CommandError(
            f"The demo data is already there (libraries {codes}); it is not loaded twice. "
            "Use a fresh database (or delete those libraries) to load it again."
        )
