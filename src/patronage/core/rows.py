"""Model instances from one hand-written joined row, made as the ORM makes them (same converters).

Protocol requests (NCIP, SIP2, the REST validation endpoint) read a client and a patron on every call;
building those reads through the ORM's query compiler cost several times the statements themselves
(docs/performance.md). A statement here names the columns ``select`` gives, in that order, and
``instances`` turns its row into one instance per joined model (None for a LEFT JOIN that found nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

Join = tuple[type[Model], str]  # a model and its alias in the statement


@dataclass(frozen=True)
class Select:
    """The column list for ``joins`` and the converters of the columns that need them."""

    columns: str
    converters: tuple[tuple[int, tuple[Callable[[Any, Any, BaseDatabaseWrapper], Any], ...], Any], ...]


@lru_cache(maxsize=64)
def select(connection: BaseDatabaseWrapper, joins: tuple[Join, ...]) -> Select:
    """Per connection (one per database and thread), built once."""
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
