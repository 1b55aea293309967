"""Per-process database connection options."""

from __future__ import annotations

from django.db import connections

OFF = {"0", "false", "off", "no"}


def use_prepared_statements(threshold: int = 2) -> list[str]:
    """Server-side binding and prepared statements for this process's PostgreSQL connections.

    Call before the process opens a connection. The protocol processes do (``patronage sip2``, and the NCIP
    pool ``patronage.ncip.wsgi``): they repeat the same handful of statements for every message, so
    PostgreSQL plans each once per connection instead of on every call, and psycopg sends parameters without
    quoting them into the text. The general web processes keep Django's default (client-side binding), as
    their statements are many and varied. Not behind a transaction-mode pooler that cannot keep prepared
    statements (PgBouncer before 1.21). Returns the aliases changed (SQLite has no such option).
    """
    changed = []
    for alias in connections:
        conf = connections.settings[alias]
        if conf.get("ENGINE") == "django.db.backends.postgresql":
            conf.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=threshold)
            changed.append(alias)
    return changed
