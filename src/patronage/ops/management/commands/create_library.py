"""``patronage create_library``: set up a library, its first branch, default roles and first administrator."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.audit import Actor
from patronage.core.errors import DomainError, FieldError, ValidationFailed
from patronage.libraries.services import create_library

# The service's field names, as the options a person typed them.
_OPTIONS = {
    "code": "--code",
    "name": "--name",
    "currency": "--currency",
    "time_zone": "--time-zone",
    "country": "--country",
    "branch_code": "--branch-code",
    "branch_name": "--branch-name",
    "username": "--admin-username",
    "first_name": "--admin-first-name",
    "last_name": "--admin-last-name",
    "email": "--admin-email",
    "password": "the password",
}


class Command(BaseCommand):
    help = (
        "Create a library with its first branch, the default roles (Desk staff, Patron administrator, Library "
        "administrator) and its first administrator account. Asks for the administrator's password when run "
        "in a terminal; otherwise the account gets no password until `patronage changepassword USERNAME`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--code", required=True, help="Short code, e.g. riverside (letters, digits, - and _).")
        parser.add_argument("--name", required=True, help="The library's name, e.g. 'Riverside Public Library'.")
        parser.add_argument("--currency", default="USD", help="ISO 4217 code of fines and payments (default USD).")
        parser.add_argument("--time-zone", required=True, help="IANA time zone, e.g. America/Chicago.")
        parser.add_argument("--country", required=True, help="ISO 3166 country code for phone numbers, e.g. US.")
        parser.add_argument("--branch-code", default="main", help="Code of the first branch (default main).")
        parser.add_argument("--branch-name", help="Name of the first branch (default: the library's name).")
        parser.add_argument("--admin-username", required=True, help="The first administrator's username.")
        parser.add_argument("--admin-email", default="", help="The first administrator's e-mail address.")
        parser.add_argument("--admin-first-name", default="")
        parser.add_argument("--admin-last-name", default="")
        parser.add_argument(
            "--no-password",
            action="store_true",
            help="Do not ask for a password; set it later with `patronage changepassword USERNAME`.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = {
            "code": options["code"],
            "name": options["name"],
            "currency": options["currency"],
            "time_zone": options["time_zone"],
            "country": options["country"],
            "branch_code": options["branch_code"],
            "branch_name": options["branch_name"] or options["name"],
        }
        administrator = {
            "username": options["admin_username"],
            "email": options["admin_email"],
            "first_name": options["admin_first_name"],
            "last_name": options["admin_last_name"],
        }
        if not options["no_password"] and sys.stdin.isatty():
            administrator["password"] = self._ask_password()
        try:
            library, membership = create_library(actor=Actor.cli(), data=data, administrator=administrator)
        except ValidationFailed as exc:
            lines = [f"{_OPTIONS.get(f, f)}: {m}" for f, messages in exc.errors.items() for m in messages]
            raise CommandError("Nothing was created:\n  " + "\n  ".join(lines)) from None
        except FieldError as exc:
            raise CommandError(f"Nothing was created: {_OPTIONS.get(exc.field, exc.field)}: {exc.message}") from None
        except DomainError as exc:
            raise CommandError(exc.message) from None
        username = membership.user.get_username()
        self.stdout.write(self.style.SUCCESS(f"Created {library.name} ({library.code}) with administrator {username}."))
        if not membership.user.has_usable_password():
            self.stdout.write(f"Set the administrator's password with: patronage changepassword {username}")
        self.stdout.write("Then sign in at /staff/ and add branches, patron types, roles and staff accounts.")

    def _ask_password(self) -> str:
        for _ in range(3):
            first = getpass.getpass("Administrator's password: ")
            if first and first == getpass.getpass("Again: "):
                return first
            self.stderr.write("The two passwords differ or are empty; try again.")
        raise CommandError("No password given; run again, or use --no-password and set it later.")
