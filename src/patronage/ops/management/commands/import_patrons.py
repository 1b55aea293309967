"""``patronage import patrons FILE.csv``: a registrar or HR feed into one library (see docs/import.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.audit import Actor
from patronage.core.errors import DomainError
from patronage.patrons.importer import import_patrons, library_for


class Command(BaseCommand):
    help = (
        "Import patrons from a CSV file keyed by person_id: new Person-IDs create patrons, known ones update "
        "the fields the file gives. All or nothing unless --keep-good-rows. Exits with status 1 when a row is bad."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The CSV file (UTF-8, comma or semicolon, header row).")
        parser.add_argument(
            "--library", help="Code of the library the patrons belong to (needed when there are several)."
        )
        parser.add_argument(
            "--keep-good-rows",
            action="store_true",
            help="Write the good rows even when some are bad (the bad ones are reported and left out).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check every row and report; write nothing.")
        parser.add_argument(
            "--jobs",
            type=int,
            default=None,
            help="Worker processes that check rows (default: one per CPU for files of 5,000 rows or more).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            library = library_for(options["library"])
            with self._progress(options["verbosity"]) as progress:
                report = import_patrons(
                    actor=Actor.cli(),
                    library=library,
                    path=options["file"],
                    keep_good_rows=options["keep_good_rows"],
                    dry_run=options["dry_run"],
                    jobs=options["jobs"],
                    progress=progress,
                )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if report.ignored_columns:
            self.stdout.write(f"Ignored columns (no such field on a patron): {', '.join(report.ignored_columns)}.")
        style = self.style.SUCCESS if not report.bad_rows else self.style.WARNING
        self.stdout.write(style(report.summary()))
        for line in report.problem_lines():
            self.stdout.write(line)
        if report.bad_rows:
            rows = "row" if report.bad_rows == 1 else "rows"
            raise CommandError(f"{report.bad_rows} bad {rows}; see the list above.")

    @contextmanager
    def _progress(self, verbosity: int) -> Iterator[Callable[[int, int], None] | None]:
        """A progress bar on standard error when it is a terminal."""
        if verbosity < 1 or not sys.stderr.isatty():
            yield None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("import", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
