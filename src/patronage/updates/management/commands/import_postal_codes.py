"""``patronage import postal-codes FILE.csv --library CODE``: the postal codes the portal checks addresses against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.audit import Actor
from patronage.core.errors import DomainError, ValidationFailed
from patronage.libraries.models import Library
from patronage.updates import services


class Command(BaseCommand):
    help = (
        "Import a library's postal codes from a CSV file with a header postal_code,city,region (city and region "
        "may be empty). Known codes are updated, new ones added; all or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The CSV file (UTF-8, header row).")
        parser.add_argument("--library", required=True, help="Code of the library the codes belong to.")
        parser.add_argument("--replace", action="store_true", help="Remove the library's codes not in the file.")

    def handle(self, *args: Any, **options: Any) -> None:
        library = Library.objects.filter(code=options["library"]).first()
        if library is None:
            raise CommandError(f"No library with the code {options['library']!r}; see `patronage create_library`.")
        path: Path = options["file"]
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8; save it as UTF-8 CSV.") from None
        try:
            result = services.import_postal_codes(
                actor=Actor.cli(), library=library, rows=services.parse_postal_csv(text), replace=options["replace"]
            )
        except ValidationFailed as exc:
            lines = [f"{where}: {message}" for where, messages in exc.errors.items() for message in messages]
            raise CommandError("Nothing imported:\n" + "\n".join(lines)) from None
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.rows} rows: {result.created} added, {result.updated} changed, {result.removed} removed."
            )
        )
