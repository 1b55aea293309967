"""Model instances from one hand-written joined row, made as the ORM makes them (same converters).

Protocol requests (NCIP, SIP2, the REST validation endpoint) read a client and a patron on every call;
building those reads through the ORM's query compiler cost several times the statements themselves
(docs/performance.md). A statement here names the columns ``select`` gives, in that order, and
``instances`` turns its row into one instance per joined model (None for a LEFT JOIN that found nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

Join = tuple[type[Model], str]  # a model and its alias in the statement


@dataclass(frozen=True)
class Select:
    """The column list for ``joins`` and the converters of the columns that need them."""

    columns: str
    converters: tuple[tuple[int, tuple[Callable[[Any, Any, BaseDatabaseWrapper], Any], ...], Any], ...]


# Keyed by the database alias and vendor, not by the connection object: each thread has its own connection,
# and a cache holding them would keep closed ones alive. The converters are the first connection's, which
# is the same database with the same settings as every other connection of its alias.
_selects: dict[tuple[str, str, tuple[Join, ...]], Select] = {}
_statements: dict[tuple[str, str, Hashable], str] = {}


def select(connection: BaseDatabaseWrapper, joins: tuple[Join, ...]) -> Select:
    """The column list and converters for ``joins`` on this connection's database, built once."""
    key = (connection.alias, connection.vendor, joins)
    found = _selects.get(key)
    if found is None:
        found = _selects[key] = _build_select(connection, joins)
    return found


def statement(connection: BaseDatabaseWrapper, key: Hashable, build: Callable[[BaseDatabaseWrapper], str]) -> str:
    """A hand-written statement named ``key``, built by ``build`` once per database rather than on every call."""
    cache_key = (connection.alias, connection.vendor, key)
    found = _statements.get(cache_key)
    if found is None:
        found = _statements[cache_key] = build(connection)
    return found


def fetch(
    model: type[Model], key: Hashable, build: Callable[[BaseDatabaseWrapper], str], params: Sequence[Any]
) -> tuple[BaseDatabaseWrapper, list[Sequence[Any]]]:
    """Run the statement ``key`` (``statement``) on the database ``model`` is read from, with ``params``:
    the connection (for ``instances``) and every row."""
    connection = connections[router.db_for_read(model)]
    with connection.cursor() as cursor:
        cursor.execute(statement(connection, key, build), params)
        return connection, cursor.fetchall()


def _build_select(connection: BaseDatabaseWrapper, joins: tuple[Join, ...]) -> Select:
    quote = connection.ops.quote_name
    columns: list[str] = []
    converters = []
    for model, alias in joins:
        for field in model._meta.concrete_fields:
            col = field.get_col(alias)
            functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if functions:
                converters.append((len(columns), tuple(functions), col))
            columns.append(f"{alias}.{quote(field.column)}")
    return Select(", ".join(columns), tuple(converters))


def instances(
    connection: BaseDatabaseWrapper, alias: str, joins: tuple[Join, ...], row: Sequence[Any]
) -> list[Model | None]:
    values = list(row)
    for index, functions, col in select(connection, joins).converters:
        for convert in functions:
            values[index] = convert(values[index], col, connection)
    made: list[Model | None] = []
    start = 0
    for model, _ in joins:
        fields = model._meta.concrete_fields
        chunk = values[start : start + len(fields)]
        start += len(fields)
        made.append(None if chunk[0] is None else model.from_db(alias, [f.attname for f in fields], chunk))
    return made
