"""The ``patronage`` command: a thin front for Django's management commands.

patronage serve [--bind 127.0.0.1:8000] [--workers 2]   gunicorn with whitenoise
patronage worker                                         the background task worker and the jobs clock
patronage sip2 [--bind 127.0.0.1:6001]                   the SIP2 server (self-check machines)
patronage import patrons FILE.csv [--keep-good-rows]     registrar/HR feed import
patronage import postal-codes FILE.csv --library CODE    the library's postal codes (checked in the portal)
patronage demo                                           load the demo library once
patronage create_library --code C --name N ...          a new library and its first administrator
patronage <any manage.py command>                        e.g. migrate, changepassword
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    if not args or args[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return
    command, rest = args[0], args[1:]
    if command == "serve":
        from patronage.ops.serve import serve

        serve(rest)
        return
    if command == "worker":
        import django

        from patronage.ops import clock

        django.setup()
        clock.start()
        args = ["db_worker", *rest]
    elif command == "sip2":
        args = ["sip2", *rest]
    elif command == "import":
        if rest and rest[0] == "postal-codes":
            args = ["import_postal_codes", *rest[1:]]
        elif not rest or rest[0] != "patrons":
            sys.exit("usage: patronage import patrons FILE.csv [--keep-good-rows]")
        else:
            args = ["import_patrons", *rest[1:]]
    from django.core.management import execute_from_command_line

    execute_from_command_line(["patronage", *args])


if __name__ == "__main__":
    main()
