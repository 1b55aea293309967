"""Shared reads of patron records: the staff search used by the pages and the API."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import phonenumbers
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Expression, F, Field, Func, Model, Q, QuerySet, TextField
from django.db.models.functions import Lower
from django.db.models.lookups import Exact, StartsWith
from django.db.models.sql.compiler import SQLCompiler

from patronage.core.errors import FieldError

from .models import Barcode, Patron, Phone

# Sorting is allowed on these keys only; each maps to the columns it orders by.
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("last_name_lower", "first_name_lower", "id"),
    "-name": ("-last_name_lower", "-first_name_lower", "-id"),
    "expires_on": ("expires_on", "id"),
    "-expires_on": ("-expires_on", "-id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
}
DEFAULT_SORT = "name"

_SQL = tuple[str, list[Any]]


def search_patrons(
    scope: QuerySet[Patron], query: str, *, region: str = "US", sort: str = DEFAULT_SORT
) -> QuerySet[Patron]:
    """Patrons in ``scope`` matching ``query`` by barcode (current or old), Person-ID, e-mail,
    phone or name prefix ("smi", "smith, jo", "jo smith").

    ``scope`` is what the access gatekeeper allows; this never widens it. One statement per page (the
    matches are found inside it), whatever the page size; filter through ``scope``, not on the result:
    a filter added afterwards is obeyed but loses the fast first-page plan (see ``_NamePrefixes``).
    """
    if sort not in SORTS:
        raise FieldError("sort", f"Sort by one of: {', '.join(SORTS)}.")
    text = " ".join(query.split())[:200]
    if not text:
        patrons = scope.annotate(last_name_lower=Lower("last_name"), first_name_lower=Lower("first_name"))
    else:
        # The sort keys carry a planner fence: a search never walks the whole library's name index in
        # order (see _Unordered); its matches come from the indexes of _match and are sorted afterwards.
        patrons = scope.annotate(last_name_lower=_Unordered(Lower("last_name")), first_name_lower=Lower("first_name"))
        patrons = patrons.filter(_match(scope, text, region, sort, len(patrons.query.where.children) + 1))
    return patrons.select_related("patron_type", "library").order_by(*SORTS[sort])


def _match(scope: QuerySet[Patron], text: str, region: str, sort: str, where_size: int) -> Q:
    lowered = text.lower()
    # Barcodes (current or old) of any library: the scope limits the patrons found.
    condition = Q(_PatronIdIn(Barcode, "number", text)) | Q(person_id=text)
    if "@" in text:
        # lower() = lower() rather than iexact (UPPER() = UPPER() on PostgreSQL, LIKE on SQLite), so the
        # lower(e-mail) indexes serve it on every database.
        return condition | Q(Exact(Lower("primary_email"), lowered)) | Q(Exact(Lower("alternate_email"), lowered))
    if re.fullmatch(r"[+(\d][\d\s().-]{5,}", text):  # "(202) 555-0143", as staff pages show numbers
        # As typed too: numbers kept without validation (PATRONAGE_PHONE_VALIDATION off) are stored so.
        condition |= Q(_PatronIdIn(Phone, "number", text))
        try:
            number = phonenumbers.parse(text, region)
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 != text:
                condition |= Q(_PatronIdIn(Phone, "number", e164))
        except phonenumbers.NumberParseException:
            pass
        return condition
    # Each alternative a name can match, as (last-name prefix, first-name prefix); "" means any.
    if "," in lowered:
        last, _, first = (part.strip() for part in lowered.partition(","))
        alternatives = [(last, first)]
    elif " " in lowered:
        first, _, last = lowered.partition(" ")
        alternatives = [(lowered, ""), (last, first)]
    else:
        alternatives = [(lowered, ""), ("", lowered)]
    if ("", "") in alternatives:  # "," alone: every name matches
        return Q()
    return condition | Q(_NamePrefixes(scope, alternatives, sort, where_size))


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):  # pragma: no cover - every name used here is a concrete field
        raise TypeError(name)
    return field


def _column(model: type[Model], name: str) -> str:
    return str(_field(model, name).column)


def _col(name: str) -> Any:
    """A column of the patron table, named as the outer query names it (for the hand-written subqueries)."""
    return _field(Patron, name).get_col(Patron._meta.db_table)


def _prefixes(last: str, first: str, *, columns: bool = False) -> Any:
    """The condition of one alternative: a Q, or with ``columns`` expressions on the patron table's columns."""
    conditions = [
        _StartsWith(Lower(_col(field) if columns else field), prefix)
        for field, prefix in (("last_name", last), ("first_name", first))
        if prefix
    ]
    return conditions if columns else Q(*conditions)


class _Unordered(Func):
    """The same value, in an expression no index is built on, for ORDER BY.

    With ``ORDER BY lower(last_name) ... LIMIT 25`` PostgreSQL likes to walk ``patron_name_lower`` (library,
    lower(last), lower(first)) in order and test every row, betting the matches come early; for a common
    surname late in the alphabet that reads most of the library (hundreds of ms at 1 M patrons). Ordering
    by ``lower(last_name) || ''`` takes that plan away, so matches are found through the indexes and then
    sorted; the values and so the order are the same.
    """

    template = "(%(expressions)s || '')"
    output_field = TextField()


class _UnorderedOnPostgres(_Unordered):
    """``_Unordered`` on PostgreSQL only. SQLite's ``patron_name_lower`` answers a last-name prefix as a range
    (see ``_StartsWith``) already in order, so there walking it is the best plan and reads only the page."""

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _SQL:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return sql, list(params)


def _id_in(connection: BaseDatabaseWrapper, column_sql: str, subquery_sql: str) -> str:
    """``column = ANY(ARRAY(subquery))`` on PostgreSQL, ``column IN (subquery)`` elsewhere.

    Inside an OR, PostgreSQL combines indexes (BitmapOr) only for conditions an index can answer. ``id IN
    (subquery)`` is not one of them (it becomes a per-row filter, and the library is read in full); ``id =
    ANY(ARRAY(subquery))`` runs the subquery once and probes the primary key with the result. SQLite reads
    ``id IN (subquery)`` as an index lookup by itself.
    """
    if connection.vendor == "postgresql":
        return f"{column_sql} = ANY(ARRAY{subquery_sql})"
    return f"{column_sql} IN {subquery_sql}"


class _PatronIdIn(Func):
    """The patron has a row of ``model`` (barcode, phone) whose ``column`` equals ``value``."""

    output_field = BooleanField()

    def __init__(self, model: type[Model], column: str, value: str, **extra: Any) -> None:
        super().__init__(F("pk"), **extra)
        self.model, self.column, self.value = model, column, value

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _SQL:  # type: ignore[override]
        pk_sql, pk_params = compiler.compile(self.get_source_expressions()[0])
        quote = connection.ops.quote_name
        patron_id = quote(_column(self.model, "patron"))
        subquery = f"(SELECT {patron_id} FROM {quote(self.model._meta.db_table)} WHERE {quote(self.column)} = %s)"
        return _id_in(connection, pk_sql, subquery), [*pk_params, self.value]


class _StartsWith(Func):
    """``lower(name)`` starts with a (lower-case) prefix.

    ``LIKE 'smi%'`` on PostgreSQL, which the ``text_pattern_ops`` indexes answer. On SQLite, whose LIKE no
    index on an expression can answer, the same set as a range (``>= 'smi' AND < 'smj'``, binary
    collation), which the (library, lower(name)) indexes answer in order.
    """

    output_field = BooleanField()

    def __init__(self, expression: Any, prefix: str, **extra: Any) -> None:
        super().__init__(expression, **extra)
        self.prefix = prefix

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _SQL:  # type: ignore[override]
        (expression,) = self.get_source_expressions()
        after = _successor(self.prefix)
        if connection.vendor == "sqlite" and after is not None:
            sql, params = compiler.compile(expression)
            return f"({sql} >= %s AND {sql} < %s)", [*params, self.prefix, *params, after]
        sql, params = compiler.compile(StartsWith(expression, self.prefix))
        return sql, list(params)


def _successor(prefix: str) -> str | None:
    """The first string after every string that starts with ``prefix``, in code point order."""
    if not prefix:
        return None
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates never occur in text
        following = 0xE000
    if following > sys.maxunicode:
        return None
    return prefix[:-1] + chr(following)


class _NamePrefixes(Expression):
    """The name-prefix alternatives of a search, written so that a page of results stays cheap.

    A 3-letter prefix of a common name matches thousands of patrons of a large library. The page shows
    25, so when the query is cut to its first ``n`` rows in its own order (what the paginator asks for),
    each alternative contributes only its own first ``n`` ids, found through its index in a subquery with
    the same order and ``LIMIT n``: every row of the page is among them, and the outer query sorts at
    most ``n`` rows per alternative. Anything else (counting, no slice, another order, or a filter added
    after the search) gets the plain condition, which is always right.

    The subqueries are written here rather than built as querysets: building and compiling one costs more
    than running it.
    """

    output_field = BooleanField()

    def __init__(
        self, scope: QuerySet[Patron], alternatives: list[tuple[str, str]], sort: str, where_size: int
    ) -> None:
        super().__init__()
        self.scope = scope
        self.alternatives = alternatives
        self.sort = sort
        self.where_size = where_size
        # Once resolved: the outer query's id column and the plain condition.
        self.resolved: list[Any] = []

    def get_source_expressions(self) -> list[Any]:
        return self.resolved

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.resolved = list(exprs)

    def resolve_expression(
        self,
        query: Any = None,
        allow_joins: bool = True,
        reuse: Any = None,
        summarize: bool = False,
        for_save: bool = False,
    ) -> _NamePrefixes:
        if self.resolved:  # compiling a lookup resolves its left-hand side again
            return self
        condition = Q()
        for last, first in self.alternatives:
            condition |= _prefixes(last, first)
        clone = self.copy()
        clone.resolved = [
            e.resolve_expression(query, allow_joins, reuse, summarize, for_save) for e in (F("pk"), condition)
        ]
        return clone

    def _window(self, compiler: SQLCompiler, column: Any) -> int | None:
        """How many rows the outer query needs, when it is the search's own query cut to its first rows."""
        query = compiler.query
        table = Patron._meta.db_table
        if (
            query.high_mark is None
            or not query.standard_ordering
            or tuple(query.order_by) != SORTS[self.sort]
            or query.extra_order_by
            or query.distinct
            or query.combinator
            or len(query.where.children) != self.where_size
            # The subqueries name the table as the outer query does and read the scope's own condition.
            or getattr(column, "alias", None) != table
            or any(alias != table and count for alias, count in self.scope.query.alias_refcount.items())
        ):
            return None
        return int(query.high_mark)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _SQL:
        column, condition = self.resolved
        window = self._window(compiler, column)
        if window is None:
            plain_sql, plain_params = compiler.compile(condition)
            return plain_sql, list(plain_params)
        column_sql, column_params = compiler.compile(column)
        scope_sql, scope_params = self.scope.query.where.as_sql(compiler, connection)
        parts: list[str] = []
        params: list[Any] = []
        for last, first in self.alternatives:
            where: list[str] = [f"({scope_sql})"] if scope_sql else []
            where_params: list[Any] = list(scope_params) if scope_sql else []
            for expression in _prefixes(last, first, columns=True):
                condition_sql, condition_params = compiler.compile(expression)
                where.append(condition_sql)
                where_params.extend(condition_params)
            order, order_params = self._order_by(compiler, fenced=bool(last))
            subquery = (
                f"(SELECT {column_sql} FROM {connection.ops.quote_name(Patron._meta.db_table)}"
                f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {window})"
            )
            parts.append(_id_in(connection, column_sql, subquery))
            params.extend([*column_params, *column_params, *where_params, *order_params])
        return "(" + " OR ".join(parts) + ")", params

    def _order_by(self, compiler: SQLCompiler, *, fenced: bool) -> _SQL:
        # The page's order. A last-name prefix is fenced on PostgreSQL (see _Unordered): its matches sit
        # together in the name index, possibly late. A first-name-only prefix is not: its matches are spread
        # over the alphabet of last names, so walking the name index in order finds the first ones early,
        # and the planner may choose that when they are many.
        keys: list[str] = []
        params: list[Any] = []
        for key in SORTS[self.sort]:
            name = key.lstrip("-")
            expression: Any
            if name == "last_name_lower":
                expression = Lower(_col("last_name"))
                if fenced:
                    expression = _UnorderedOnPostgres(expression)
            elif name == "first_name_lower":
                expression = Lower(_col("first_name"))
            else:
                expression = _col(name)
            sql, key_params = compiler.compile(expression)
            keys.append(f"{sql} {'DESC' if key.startswith('-') else 'ASC'}")
            params.extend(key_params)
        return ", ".join(keys), params
