"""Import patrons from a registrar or HR feed: one CSV file, one library, one transaction.

The Person-ID is the key. A row whose Person-ID belongs to a patron of the library updates that patron,
field by field, and only where the file has a value that differs from the record (an equal value is
neither checked again nor written); any other row creates a patron. Each value is checked by the same
functions the patron services use (``clean_section``, ``clean_phones``, ``clean_addresses``,
``clean_barcode``), so a value the staff pages refuse is refused here too, with the same message, plus the
line and column to fix.

The writing is done in bulk rather than through one service call per patron, because a feed has tens of
thousands of rows: patrons are read and written in batches, unchanged rows and fields are not written at
all, and the import records one audit event with the counts (``patrons.imported``).

The checks are pure computation (above all the phone numbers), so on a large file they run in worker
processes, one per CPU, while this process reads the database and writes the previous batch.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import difflib
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import django
from django.db import connection, models, transaction

from patronage.core import audit, clock
from patronage.core.errors import DomainError, FieldError, ValidationFailed
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Address, Barcode, Patron, PatronType, Phone
from patronage.patrons.services import ADDRESS_FIELDS, clean_addresses, clean_phones, clean_section, default_expiry
from patronage.patrons.validation import clean_barcode, phone_validation

# Feed column -> (section of patrons.services.SECTIONS, model field).
PATRON_COLUMNS: dict[str, tuple[str, str]] = {
    "person_id": ("identity", "person_id"),
    "first_name": ("identity", "first_name"),
    "last_name": ("identity", "last_name"),
    "birth_date": ("identity", "birth_date"),
    "primary_email": ("contact", "primary_email"),
    "alternate_email": ("contact", "alternate_email"),
    "notification_method": ("contact", "notification_method"),
    "patron_type": ("membership", "patron_type"),
    "branch": ("membership", "registered_branch"),
    "expiry_date": ("membership", "expires_on"),
    "status": ("membership", "status"),
}
PHONE_COLUMNS = {"phone_mobile": "mobile", "phone_home": "home", "phone_work": "work"}
ADDRESS_COLUMNS = {f"address_{name}": name for name in ADDRESS_FIELDS}
BARCODE_COLUMN = "barcode"
# Columns of the registrar feed format that a patron record has no field for: accepted and ignored.
IGNORED_COLUMNS = ("middle_name", "preferred_name")
COLUMNS = (*PATRON_COLUMNS, BARCODE_COLUMN, *PHONE_COLUMNS, *ADDRESS_COLUMNS)
# What the file must have: the key, and what a new patron needs (services.REQUIRED_ON_CREATE, by column).
KEY_COLUMN = "person_id"
REQUIRED_TO_CREATE = {"first_name": "first_name", "last_name": "last_name", "patron_type": "patron_type",
                      "registered_branch": "branch"}  # fmt: skip
REFERENCES = {"patron_type": "patron_type_id", "registered_branch": "registered_branch_id"}  # field -> attname
# Choice codes are read case-insensitively ("Active" is "active").
LOWERCASE_FIELDS = frozenset({"status", "notification_method"})
# Each field is checked on its own (clean_section checks field by field), so a value seen before needs no
# second check: every distinct value of a field is checked once per process. Fields whose values are nearly
# all different are checked row by row instead of filling the memo.
UNIQUE_FIELDS = frozenset({"person_id", "primary_email", "alternate_email"})
DATE_FIELDS = frozenset({"birth_date", "expires_on"})
COLUMN_OF = {name: column for column, (_, name) in PATRON_COLUMNS.items()} | {
    f"addresses.0.{name}": column for column, name in ADDRESS_COLUMNS.items()
}
# Model attname (what rows hold once references are resolved) -> feed column, for the report.
COLUMN_OF_ATTNAME = {REFERENCES.get(name, name): column for column, (_, name) in PATRON_COLUMNS.items()}
DEFAULT_BATCH = 2000
PARALLEL_FROM_ROWS = 5000  # smaller files are checked in this process: starting workers costs a second
MAX_JOBS = 8
QUERY_CHUNK = 900  # values per IN (...) list, under every database's parameter limit
_MEMO_LIMIT = 200_000

T = TypeVar("T")


class FileRefused(DomainError):
    """The file as a whole cannot be read (encoding, header, quoting); nothing was written."""

    code = "import_file_refused"


@dataclass(frozen=True)
class Problem:
    line: int
    column: str
    message: str


@dataclass
class ImportReport:
    file: str
    library: str
    dry_run: bool
    keep_good_rows: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    barcodes_replaced: int = 0
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    changed_columns: Counter[str] = field(default_factory=Counter)
    written: bool = False
    seconds: float = 0.0

    @property
    def bad_rows(self) -> int:
        return len({p.line for p in self.problems})

    @property
    def good_rows(self) -> int:
        return self.rows - self.bad_rows

    def summary(self) -> str:
        counts = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        head = f"{self.file}: {self.rows} rows for {self.library}; {self.good_rows} good, {self.bad_rows} bad."
        if self.dry_run:
            outcome = f"Dry run, nothing written. The good rows would give: {counts}."
        elif self.written:
            outcome = f"Written: {counts}; {self.barcodes_replaced} barcodes replaced."
            if self.bad_rows:
                outcome += " The bad rows below were left out; fix them and import the file again."
        else:
            outcome = (
                "Nothing was written: an import is all or nothing. Fix the rows below and import the file "
                "again, or use --keep-good-rows to write the good rows now."
            )
        return f"{head} {outcome} ({self.seconds:.1f} s)"

    def problem_lines(self) -> Iterator[str]:
        for problem in sorted(self.problems, key=lambda p: (p.line, p.column)):
            yield f"line {problem.line}, column {problem.column}: {problem.message}"


def import_patrons(
    *,
    actor: audit.Actor,
    library: Library,
    path: Path | str,
    keep_good_rows: bool = False,
    dry_run: bool = False,
    jobs: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import the CSV file at ``path`` into ``library``; see docs/import.md for the format and the rules.

    ``jobs`` is the number of worker processes that check rows (default: one per CPU for large files,
    none for small ones). ``progress(done, total)`` is called after each batch. Raises ``FileRefused``
    when the file cannot be read at all.
    """
    return _Import(actor, library, Path(path), keep_good_rows, dry_run, jobs, batch_size, progress).run()


# Reading the file -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each known column sits in the file's rows."""

    width: int
    patron: tuple[tuple[int, str, str], ...]  # index, section, model field
    phones: tuple[tuple[int, str], ...]  # index, phone kind
    address: tuple[tuple[int, str], ...]  # index, address field
    barcode: int | None
    key: int


def _open(path: Path) -> Any:
    # utf-8-sig drops a byte-order mark when there is one; newline="" lets csv handle line ends in quotes.
    return path.open(encoding="utf-8-sig", newline="")


def read_layout(path: Path) -> tuple[Layout, str, list[str]]:
    """The file's column layout, its delimiter (comma or semicolon) and the columns it ignores."""
    try:
        with _open(path) as handle:
            first = handle.readline()
    except UnicodeDecodeError:
        raise FileRefused("Line 1 is not UTF-8 text; save the file as CSV UTF-8 and try again.") from None
    except OSError as exc:
        raise FileRefused(f"Cannot read {path}: {exc.strerror}.") from None
    if not first.strip():
        raise FileRefused("The file is empty; the first line must name the columns (person_id, first_name, ...).")
    known = {*COLUMNS, *IGNORED_COLUMNS}

    def header(delimiter: str) -> list[str]:
        return [c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter))]

    delimiter = max((",", ";"), key=lambda d: sum(name in known for name in header(d)))
    names = header(delimiter)
    unknown = [n for n in names if n and n not in known]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, COLUMNS, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise FileRefused(
            f"Line 1 names columns this import does not know: {', '.join(hints)}. "
            f"Rename or remove them; the columns are {', '.join(COLUMNS)}."
        )
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise FileRefused(f"Line 1 names these columns more than once: {', '.join(repeated)}; keep one of each.")
    if KEY_COLUMN not in names:
        raise FileRefused("Line 1 has no person_id column; every row needs the Person-ID that identifies it.")
    address = [c for c in ADDRESS_COLUMNS if c in names]
    if address and not {"address_line1", "address_city"} <= set(address):
        raise FileRefused(
            "Line 1 has address columns but not both address_line1 and address_city; an address needs both "
            "(the other address columns are optional)."
        )
    index = {name: i for i, name in enumerate(names) if name}
    layout = Layout(
        width=len(names),
        patron=tuple((index[c], *PATRON_COLUMNS[c]) for c in PATRON_COLUMNS if c in index),
        phones=tuple((index[c], kind) for c, kind in PHONE_COLUMNS.items() if c in index),
        address=tuple((index[c], name) for c, name in ADDRESS_COLUMNS.items() if c in index),
        barcode=index.get(BARCODE_COLUMN),
        key=index[KEY_COLUMN],
    )
    return layout, delimiter, [n for n in names if n in IGNORED_COLUMNS]


def read_rows(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the row starts, cells) for every non-blank row after the header."""
    with _open(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            next(reader, None)
            end = reader.line_num
            for cells in reader:
                start, end = end + 1, reader.line_num
                if any(cell.strip() for cell in cells):
                    yield start, cells
        except UnicodeDecodeError:
            raise FileRefused(
                f"Line {reader.line_num + 1} is not UTF-8 text; save the file as CSV UTF-8 and try again."
            ) from None
        except csv.Error as exc:
            raise FileRefused(f"Line {reader.line_num} cannot be read as CSV ({exc}); check its quotes.") from None


# Checking rows (pure: no database, so it can run in worker processes) ---------------------------------


@dataclass(slots=True)
class CleanRow:
    line: int
    values: dict[str, Any]  # model field -> cleaned value, for non-empty cells; references still as codes
    phones: dict[str, str]  # kind -> E.164
    address: dict[str, Any] | None  # the home address, when the row has any address cell
    barcode: str | None
    problems: list[tuple[str, str]]  # (column, message)


def _column_problems(errors: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
    for key, messages in errors.items():
        yield COLUMN_OF.get(key, key), " ".join(messages)


class RowCleaner:
    """Checks rows with the patron services' own validation. Holds no database state."""

    def __init__(self, layout: Layout, country: str, validate_phones: bool | None = None) -> None:
        self.layout = layout
        # The system-level phone validation as the importing process sees it (workers are fresh interpreters).
        self.validate_phones = phone_validation() if validate_phones is None else validate_phones
        # The services read only the library's country here (phone numbers); references are resolved later.
        self.library = Library(country=country)
        self.memo: dict[tuple[str, str], tuple[Any, str | None]] = {}

    def clean(self, line: int, cells: Sequence[str]) -> CleanRow:
        problems: list[tuple[str, str]] = []
        values: dict[str, Any] = {}
        sections: dict[str, dict[str, str]] = {}
        for index, section, name in self.layout.patron:
            text = cells[index].strip()
            if not text:
                continue  # an empty cell leaves the record as it is
            if name in LOWERCASE_FIELDS:
                text = text.lower()
            if name in REFERENCES:
                values[name] = text
            elif name in UNIQUE_FIELDS:
                sections.setdefault(section, {})[name] = text
            else:
                self._repeated(section, name, text, values, problems)
        for section, data in sections.items():
            try:
                values.update(clean_section(self.library, section, data))
            except ValidationFailed as exc:
                problems.extend(_column_problems(exc.errors))
        phones: dict[str, str] = {}
        given = {kind: cells[i] for i, kind in self.layout.phones if cells[i].strip()}
        if given:
            try:
                cleaned = clean_phones(self.library, given, validate=self.validate_phones)
                phones = {k: v for k, v in cleaned.items() if v}
            except ValidationFailed as exc:
                problems.extend(_column_problems(exc.errors))
        address = None
        if any(cells[i].strip() for i, _ in self.layout.address):
            raw = {"kind": Address.Kind.HOME, **{name: cells[i] for i, name in self.layout.address}}
            try:
                address = clean_addresses([raw])[0]
            except ValidationFailed as exc:
                problems.extend(_column_problems(exc.errors))
        barcode = None
        if self.layout.barcode is not None and cells[self.layout.barcode].strip():
            try:
                barcode = clean_barcode(cells[self.layout.barcode])
            except FieldError as exc:
                problems.extend(_column_problems(exc.errors))
        return CleanRow(line, values, phones, address, barcode, problems)

    def _repeated(
        self, section: str, name: str, text: str, values: dict[str, Any], problems: list[tuple[str, str]]
    ) -> None:
        key = (name, text)
        known = self.memo.get(key)
        if known is None:
            try:
                known = (clean_section(self.library, section, {name: text})[name], None)
            except ValidationFailed as exc:
                known = (None, " ".join(exc.errors[name]))
            if len(self.memo) > _MEMO_LIMIT:
                self.memo.clear()
            self.memo[key] = known
        value, message = known
        if message is None:
            values[name] = value
        else:
            problems.append((COLUMN_OF[name], message))

    def clean_batch(self, rows: Sequence[tuple[int, Sequence[str]]]) -> list[CleanRow]:
        return [self.clean(line, cells) for line, cells in rows]


_cleaners: dict[tuple[Layout, str, bool], RowCleaner] = {}
# A checked row as a worker sends it back: plain tuples, dates as day numbers. Pickling dataclasses, dicts
# and dates costs several times more, and the process that unpickles is the one that also writes.
_Packed = tuple[
    int, tuple[Any, ...], tuple[tuple[str, str], ...], tuple[Any, ...] | None, str | None, tuple[tuple[str, str], ...]
]


def _pack(layout: Layout, row: CleanRow) -> _Packed:
    values = tuple(
        None if (v := row.values.get(name)) is None else v.toordinal() if isinstance(v, dt.date) else v
        for _, _, name in layout.patron
    )
    address = None if row.address is None else tuple(row.address[name] for name in ADDRESS_FIELDS)
    return row.line, values, tuple(row.phones.items()), address, row.barcode, tuple(row.problems)


def _unpack(names: Sequence[str], packed: _Packed) -> CleanRow:
    line, values, phones, address, barcode, problems = packed
    cleaned = {name: value for name, value in zip(names, values, strict=True) if value is not None}
    for name in DATE_FIELDS.intersection(cleaned):
        cleaned[name] = dt.date.fromordinal(cleaned[name])
    home = None if address is None else dict(zip(_HOME_KEYS, (Address.Kind.HOME, *address), strict=True))
    return CleanRow(line, cleaned, dict(phones), home, barcode, list(problems))


_HOME_KEYS = ("kind", *ADDRESS_FIELDS)


def _clean_in_worker(
    layout: Layout, country: str, validate_phones: bool, rows: list[tuple[int, list[str]]]
) -> list[_Packed]:
    """A worker's task. The worker imports this module only after its initializer set Django up."""
    cleaner = _cleaners.get((layout, country, validate_phones))
    if cleaner is None:
        cleaner = _cleaners[(layout, country, validate_phones)] = RowCleaner(layout, country, validate_phones)
    return [_pack(layout, row) for row in cleaner.clean_batch(rows)]


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _chunks(items: Sequence[T], size: int = QUERY_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# The import ---------------------------------------------------------------------------------------------


@dataclass
class _Current:
    """What the database holds for the patrons of one batch."""

    patrons: dict[str, dict[str, Any]] = field(default_factory=dict)  # person_id -> column values
    phones: dict[int, dict[str, str]] = field(default_factory=dict)  # patron id -> kind -> number
    addresses: dict[int, dict[str, Any]] = field(default_factory=dict)  # patron id -> home address
    active_barcode: dict[int, str] = field(default_factory=dict)  # patron id -> number
    used_barcodes: set[str] = field(default_factory=set)  # numbers of the batch in use now or in the past


@dataclass
class _Writes:
    """Everything one batch changes, gathered before anything is written."""

    new_patrons: list[tuple[dict[str, Any], CleanRow]] = field(default_factory=list)  # attname -> value
    # Changed attnames -> (their new values, patron id) for each patron that changes exactly those.
    updates: dict[tuple[str, ...], list[tuple[list[Any], int]]] = field(default_factory=dict)
    touched: list[int] = field(default_factory=list)  # patrons whose only change is a phone, address or barcode
    phone_updates: list[tuple[str, int, str]] = field(default_factory=list)  # number, patron id, kind
    new_phones: list[tuple[int, str, str]] = field(default_factory=list)  # patron id, kind, number
    address_updates: list[list[Any]] = field(default_factory=list)
    new_addresses: list[list[Any]] = field(default_factory=list)  # patron id, kind, *ADDRESS_FIELDS
    retired_barcodes: list[int] = field(default_factory=list)  # patron ids
    new_barcodes: list[tuple[int, str]] = field(default_factory=list)  # patron id, number


class _Import:
    def __init__(
        self,
        actor: audit.Actor,
        library: Library,
        path: Path,
        keep_good_rows: bool,
        dry_run: bool,
        jobs: int | None,
        batch_size: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.actor = actor
        self.library = library
        self.path = path
        self.keep_good_rows = keep_good_rows
        self.dry_run = dry_run
        self.jobs = jobs
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.report = ImportReport(file=path.name, library=library.code, dry_run=dry_run, keep_good_rows=keep_good_rows)
        self.bad: dict[int, list[tuple[str, str]]] = {}
        self.now = clock.now()
        self.today = clock.today(library.time_zone)
        self.references: dict[tuple[str, str], tuple[int | None, str | None]] = {}
        self.types: dict[int, PatronType] = {}
        self.expiry: dict[int, dt.date] = {}  # patron type id -> expiry date of a record made today
        self.db_forms: dict[tuple[str, Any], Any] = {}

    # The run ------------------------------------------------------------------------------------------

    def run(self) -> ImportReport:
        started = time.perf_counter()
        self.layout, self.delimiter, self.report.ignored_columns = read_layout(self.path)
        self.address_columns = frozenset(name for _, name in self.layout.address)
        self.codes: dict[str, dict[int, str]] = {
            "patron_type": dict(PatronType.objects.filter(library=self.library).values_list("pk", "code")),
            "registered_branch": dict(Branch.objects.filter(library=self.library).values_list("pk", "code")),
        }
        self._scan()
        done = 0
        # A dry run reads only: no transaction, so on SQLite it does not hold the write lock meanwhile.
        with transaction.atomic() if not self.dry_run else contextlib.nullcontext():
            for rows, current in self._checked_batches():
                self._apply(rows, current)
                done += len(rows)
                if self.progress:
                    self.progress(done, self.report.rows)
            if self.progress:
                self.progress(self.report.rows, self.report.rows)
            self.report.problems = [Problem(line, c, m) for line, found in self.bad.items() for c, m in found]
            self.report.written = self._may_write()
            if self.report.written:
                self._record("patrons.imported")
            elif not self.dry_run:
                transaction.set_rollback(True)
        if not self.dry_run and not self.report.written:
            with transaction.atomic():
                self._record("patrons.import_refused")
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _may_write(self) -> bool:
        return not self.dry_run and (self.keep_good_rows or not self.bad)

    def _record(self, action: str) -> None:
        r = self.report
        audit.record(
            self.actor, action, library_id=self.library.pk, file=r.file, rows=r.rows, created=r.created,
            updated=r.updated, unchanged=r.unchanged, bad_rows=r.bad_rows, barcodes_replaced=r.barcodes_replaced,
            fields=dict(sorted(r.changed_columns.items())), keep_good_rows=r.keep_good_rows,
        )  # fmt: skip

    def _problem(self, line: int, column: str, message: str) -> None:
        self.bad.setdefault(line, []).append((column, message))

    def _scan(self) -> None:
        """First pass: count rows, and find rows of the wrong width and keys used twice in the file."""
        seen: dict[str, dict[str, int]] = {KEY_COLUMN: {}, BARCODE_COLUMN: {}}
        width = self.layout.width
        for line, cells in read_rows(self.path, self.delimiter):
            self.report.rows += 1
            if len(cells) != width:
                self._problem(
                    line, "(row)", f"The row has {len(cells)} cells but line 1 names {width} columns; "
                    "check for a missing or extra delimiter, or a quote that is not closed.",
                )  # fmt: skip
                continue
            keys = [(KEY_COLUMN, cells[self.layout.key].strip())]
            if self.layout.barcode is not None:
                keys.append((BARCODE_COLUMN, cells[self.layout.barcode].strip()))
            for column, value in keys:
                if not value:
                    continue
                first = seen[column].setdefault(value, line)
                if first != line:
                    what = "Person-ID" if column == KEY_COLUMN else "barcode"
                    self._problem(line, column, f"The {what} {value} is also on line {first}; keep it on one row.")
                    if not any(c == column for c, _ in self.bad.get(first, [])):
                        self._problem(first, column, f"The {what} {value} is also on line {line}; keep it on one row.")

    def _checked_batches(self) -> Iterator[tuple[list[CleanRow], _Current]]:
        """The rows batch by batch in file order, checked, each batch with what the database holds for it.

        Rows of the wrong width are left out (the scan reported them). The database is read before the rows
        are checked, so that cells holding what the record holds already are blanked and need no check.
        """
        width = self.layout.width
        rows = ((line, cells) for line, cells in read_rows(self.path, self.delimiter) if len(cells) == width)
        prepared = (self._prepare(batch) for batch in _batched(rows, self.batch_size))
        jobs = self.jobs if self.jobs is not None else min(os.cpu_count() or 1, MAX_JOBS)
        if jobs <= 1 or (self.jobs is None and self.report.rows < PARALLEL_FROM_ROWS):
            cleaner = RowCleaner(self.layout, self.library.country)
            for batch, current in prepared:
                yield cleaner.clean_batch(batch), current
            return
        # A fresh interpreter per worker ("spawn"): never fork a process that holds a database connection.
        # Its first step is django.setup(), which must come before this module (and its models) is imported.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=django.setup)
        country = self.library.country
        validate_phones = phone_validation()
        names = [name for _, _, name in self.layout.patron]
        try:
            pending: deque[tuple[Future[list[_Packed]], _Current]] = deque()
            for batch, current in prepared:
                pending.append((pool.submit(_clean_in_worker, self.layout, country, validate_phones, batch), current))
                while pending and (len(pending) > 2 * jobs or pending[0][0].done()):
                    # Bounded read-ahead: memory stays flat on any file size.
                    future, ready = pending.popleft()
                    yield [_unpack(names, packed) for packed in future.result()], ready
            while pending:
                future, ready = pending.popleft()
                yield [_unpack(names, packed) for packed in future.result()], ready
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, batch: list[tuple[int, list[str]]]) -> tuple[list[tuple[int, list[str]]], _Current]:
        """Read the batch's patrons and blank the cells that equal the record: they change nothing.

        Reading ahead of the writes of earlier batches is safe: a Person-ID or barcode used on two rows is
        refused on both, so no earlier row writes anything a later row's lookup depends on.
        """
        layout = self.layout
        person_ids = [cells[layout.key].strip() for _, cells in batch]
        numbers = [cells[layout.barcode].strip() for _, cells in batch] if layout.barcode is not None else []
        current = self._read_current([p for p in person_ids if p], [n for n in numbers if n])
        for (_, cells), person_id in zip(batch, person_ids, strict=True):
            existing = current.patrons.get(person_id)
            if existing is not None:
                self._blank_unchanged(cells, existing, current)
        return batch, current

    def _blank_unchanged(self, cells: list[str], existing: dict[str, Any], current: _Current) -> None:
        layout = self.layout
        patron_id = existing["id"]
        for index, _, name in layout.patron:
            text = cells[index].strip()
            if name in LOWERCASE_FIELDS:
                text = text.lower()
            if text and name != "person_id" and text == self._as_text(name, existing[REFERENCES.get(name, name)]):
                cells[index] = ""
        phones = current.phones.get(patron_id, {})
        for index, kind in layout.phones:
            if cells[index].strip() == phones.get(kind, "") and phones.get(kind):
                cells[index] = ""
        home = current.addresses.get(patron_id)
        if home is not None and layout.address:
            texts = {name: cells[index].strip() for index, name in layout.address}
            texts["country"] = texts.get("country", home["country"]).upper()
            if any(texts.values()) and all(home[name] == text for name, text in texts.items()):
                for index, _ in layout.address:
                    cells[index] = ""
        if layout.barcode is not None and cells[layout.barcode].strip() == current.active_barcode.get(patron_id):
            cells[layout.barcode] = ""

    def _as_text(self, name: str, value: Any) -> str | None:
        """A stored value as a feed would write it, to compare with a cell."""
        if value is None:
            return None
        if name in REFERENCES:
            return self.codes[name].get(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)

    # One batch --------------------------------------------------------------------------------------------

    def _apply(self, rows: list[CleanRow], current: _Current) -> None:
        keyed: list[CleanRow] = []
        for row in rows:
            for column, message in row.problems:
                self._problem(row.line, column, message)
            self._resolve_references(row)
            if "person_id" in row.values:
                keyed.append(row)
            elif not any(column == KEY_COLUMN for column, _ in row.problems):
                self._problem(row.line, KEY_COLUMN, "Every row needs a Person-ID; it says which patron the row is.")
        # Rows with problems are planned too, so that the report lists everything to fix in one go.
        writes = _Writes()
        for row in keyed:
            existing = current.patrons.get(row.values["person_id"])
            if existing is None:
                self._plan_create(row, current, writes)
            else:
                self._plan_update(row, existing, current, writes)
        if self._may_write():
            self._write(writes)

    def _resolve_references(self, row: CleanRow) -> None:
        """Patron type and branch codes, checked by the patron services once per distinct code."""
        for name, attname in REFERENCES.items():
            if name not in row.values:
                continue
            code = row.values.pop(name)
            known = self.references.get((name, code))
            if known is None:
                try:
                    match = clean_section(self.library, "membership", {name: code})[name]
                    known = (match.pk, None)
                    if isinstance(match, PatronType):
                        self.types[match.pk] = match
                except ValidationFailed as exc:
                    known = (None, " ".join(exc.errors[name]))
                self.references[(name, code)] = known
            pk, message = known
            if message is None:
                row.values[attname] = pk
            else:
                self._problem(row.line, COLUMN_OF[name], message)

    def _read_current(self, person_ids: list[str], numbers: list[str]) -> _Current:
        """One batch's patrons as stored, with their phones, home address and barcodes.

        Plain SQL through the driver: building ORM lookups over hundreds of values costs more than running them.
        """
        current = _Current()
        attnames = self._patron_columns()
        columns = ["id", "person_id", *(_PATRON_FIELDS[name].column for name in attnames)]
        # No FOR UPDATE: an UPDATE locks only the rows it changes, until the import commits. A member of staff
        # who saves a patron between this read and that write wins where the file agrees with what was read
        # here, and the file wins where it differs; both are what would happen a moment later anyway.
        for chunk in _chunks(person_ids):
            found = _select(Patron, columns, "library_id = %s AND person_id", chunk, [self.library.pk])
            for patron_id, person_id, *values in found:
                current.patrons[person_id] = {
                    "id": patron_id,
                    "person_id": person_id,
                    **dict(zip(attnames, values, strict=True)),
                }
        for chunk in _chunks([values["id"] for values in current.patrons.values()]):
            if self.layout.phones:
                for patron_id, kind, number in _select(Phone, ["patron_id", "kind", "number"], "patron_id", chunk):
                    current.phones.setdefault(patron_id, {})[kind] = number
            if self.layout.address:
                where = "kind = %s AND patron_id"
                for patron_id, *values in _select(Address, ["patron_id", *ADDRESS_FIELDS], where, chunk, ["home"]):
                    current.addresses[patron_id] = dict(zip(ADDRESS_FIELDS, values, strict=True))
            if self.layout.barcode is not None:
                active = _select(Barcode, ["patron_id", "number"], "is_active = %s AND patron_id", chunk, [True])
                current.active_barcode.update((patron_id, number) for patron_id, number in active)
        for chunk in _chunks(numbers):
            used = _select(Barcode, ["number"], "library_id = %s AND number", chunk, [self.library.pk])
            current.used_barcodes.update(number for (number,) in used)
        return current

    def _patron_columns(self) -> list[str]:
        names = [name for _, _, name in self.layout.patron]
        return [REFERENCES.get(name, name) for name in names if name != "person_id"]

    def _barcode_taken(self, row: CleanRow, number: str) -> None:
        self._problem(
            row.line, BARCODE_COLUMN,
            f"Barcode {number} is already in use at this library (now or in the past); give a new number.",
        )  # fmt: skip

    def _plan_create(self, row: CleanRow, current: _Current, writes: _Writes) -> None:
        flagged = {column for column, _ in self.bad.get(row.line, [])}
        for name, column in REQUIRED_TO_CREATE.items():
            if REFERENCES.get(name, name) not in row.values and column not in flagged:
                self._problem(
                    row.line,
                    column,
                    f"Required for a new patron (no patron at {self.library.name} has this Person-ID).",
                )
        if row.barcode and row.barcode in current.used_barcodes:
            self._barcode_taken(row, row.barcode)
        if row.line in self.bad:
            return
        values = dict(row.values)
        if "expires_on" not in values:
            type_id = values["patron_type_id"]
            if type_id not in self.expiry:
                self.expiry[type_id] = default_expiry(self.types[type_id], self.today)
            values["expires_on"] = self.expiry[type_id]
        values.update(library_id=self.library.pk, created_at=self.now, updated_at=self.now)
        writes.new_patrons.append((values, row))
        self.report.created += 1

    def _plan_update(self, row: CleanRow, existing: dict[str, Any], current: _Current, writes: _Writes) -> None:
        patron_id: int = existing["id"]
        new_barcode = row.barcode if row.barcode and row.barcode != current.active_barcode.get(patron_id) else None
        if new_barcode and new_barcode in current.used_barcodes:
            self._barcode_taken(row, new_barcode)
        if row.line in self.bad:
            return
        changed = self.report.changed_columns
        fields = sorted(name for name, value in row.values.items() if existing[name] != value)
        touched = False
        if new_barcode:
            if patron_id in current.active_barcode:
                writes.retired_barcodes.append(patron_id)
                self.report.barcodes_replaced += 1
            writes.new_barcodes.append((patron_id, new_barcode))
            changed[BARCODE_COLUMN] += 1
            touched = True
        phones = current.phones.get(patron_id, {})
        for kind, number in row.phones.items():
            if phones.get(kind) == number:
                continue
            if kind in phones:
                writes.phone_updates.append((number, patron_id, kind))
            else:
                writes.new_phones.append((patron_id, kind, number))
            changed[f"phone_{kind}"] += 1
            touched = True
        if row.address is not None:
            home = current.addresses.get(patron_id)
            # Address columns the file does not have keep what the record has.
            given = self.address_columns
            address = {
                name: row.address[name] if name in given or home is None else home[name] for name in ADDRESS_FIELDS
            }
            if home is None:
                writes.new_addresses.append([patron_id, Address.Kind.HOME, *address.values()])
            elif home != address:
                writes.address_updates.append([*address.values(), patron_id, Address.Kind.HOME])
            if home != address:
                changed["address"] += 1
                touched = True
        if fields:
            writes.updates.setdefault(tuple(fields), []).append(([row.values[name] for name in fields], patron_id))
            changed.update(COLUMN_OF_ATTNAME[name] for name in fields)
        elif touched:
            writes.touched.append(patron_id)
        if fields or touched:
            self.report.updated += 1
        else:
            self.report.unchanged += 1

    # Writing ----------------------------------------------------------------------------------------------

    def _write(self, writes: _Writes) -> None:
        """Write one batch with multi-row statements through the driver: the ORM's per-object work
        (model instances, one compiled statement per few rows) would cost more than the database does."""
        with connection.cursor() as cursor:
            if writes.new_patrons:
                patrons = ([values.get(a, d) for a, d in _PATRON_DEFAULTS] for values, _ in writes.new_patrons)
                _PATRONS.insert(cursor, patrons, self._db)
                ids = self._ids_of([values["person_id"] for values, _ in writes.new_patrons])
                for values, row in writes.new_patrons:
                    patron_id = ids[values["person_id"]]
                    if row.barcode:
                        writes.new_barcodes.append((patron_id, row.barcode))
                    writes.new_phones.extend((patron_id, kind, number) for kind, number in row.phones.items())
                    if row.address is not None:
                        writes.new_addresses.append([patron_id, *(row.address[f] for f in _ADDRESS_COLUMNS[1:])])
            now = self._db(_PATRON_FIELDS["updated_at"], self.now)
            for names, rows in writes.updates.items():
                fields = [_PATRON_FIELDS[name] for name in names]
                params = [[*(self._db(f, v) for f, v in zip(fields, values, strict=True)), pk] for values, pk in rows]
                _update_patrons(cursor, fields, params, now)
            if writes.touched:
                cursor.executemany(
                    f"UPDATE {_quote(Patron._meta.db_table)} SET updated_at = %s WHERE id = %s",
                    [[now, patron_id] for patron_id in writes.touched],
                )
            if writes.retired_barcodes:
                # The partial unique index allows one active barcode per patron: retire before issuing.
                cursor.executemany(
                    f"UPDATE {_quote(Barcode._meta.db_table)} SET is_active = %s, replaced_at = %s "
                    "WHERE patron_id = %s AND is_active = %s",
                    [[False, now, patron_id, True] for patron_id in writes.retired_barcodes],
                )
            if writes.phone_updates:
                cursor.executemany(
                    f"UPDATE {_quote(Phone._meta.db_table)} SET number = %s WHERE patron_id = %s AND kind = %s",
                    writes.phone_updates,
                )
            if writes.address_updates:
                assignments = ", ".join(f"{_quote(name)} = %s" for name in ADDRESS_FIELDS)
                cursor.executemany(
                    f"UPDATE {_quote(Address._meta.db_table)} SET {assignments} WHERE patron_id = %s AND kind = %s",
                    writes.address_updates,
                )
            barcodes = ([self.library.pk, pk, number, True, self.now] for pk, number in writes.new_barcodes)
            _BARCODES.insert(cursor, barcodes, self._db)
            _PHONES.insert(cursor, writes.new_phones, self._db)
            _ADDRESSES.insert(cursor, writes.new_addresses, self._db)

    def _db(self, model_field: models.Field[Any, Any], value: Any) -> Any:
        """The database form of a value. Dates and times are adapted by the backend, once per distinct value
        (most are the import's own time); text, numbers and flags go to the driver as they are."""
        if value is None or not isinstance(model_field, models.DateField):
            return value
        key = (model_field.attname, value)
        form = self.db_forms.get(key)
        if form is None:
            if len(self.db_forms) > _MEMO_LIMIT:
                self.db_forms.clear()
            form = self.db_forms[key] = model_field.get_db_prep_save(value, connection)
        return form

    def _ids_of(self, person_ids: list[str]) -> dict[str, int]:
        """The ids of patrons just inserted, found by their Person-ID (unique at the library)."""
        ids: dict[str, int] = {}
        for chunk in _chunks(person_ids):
            found = _select(Patron, ["person_id", "id"], "library_id = %s AND person_id", chunk, [self.library.pk])
            ids.update((person_id, pk) for person_id, pk in found)
        return ids


def _select(
    model: type[models.Model],
    columns: Sequence[str],
    where: str,
    values: Sequence[Any],
    params: Sequence[Any] = (),
) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM model's table WHERE <where> IN (values)``: ``where`` ends with the IN column."""
    sql = (
        f"SELECT {', '.join(_quote(c) for c in columns)} FROM {_quote(model._meta.db_table)} "
        f"WHERE {where} IN ({', '.join(['%s'] * len(values))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *values])
        return list(cursor.fetchall())


def _update_patrons(cursor: Any, fields: list[models.Field[Any, Any]], rows: list[list[Any]], now: Any) -> None:
    """Set ``fields`` (and ``updated_at``) of many patrons; each row holds the new values, then the id."""
    table = _quote(Patron._meta.db_table)
    if connection.vendor != "postgresql":
        assignments = ", ".join(f"{_quote(f.column)} = %s" for f in fields)
        cursor.executemany(f"UPDATE {table} SET {assignments}, updated_at = %s WHERE id = %s",
                           [[*row[:-1], now, row[-1]] for row in rows])  # fmt: skip
        return
    # PostgreSQL: one statement per thousand rows, joining the new values as a VALUES list, instead of a
    # statement per row. The casts give each VALUES column the type of the column it sets.
    casts = [f"%s::{f.db_type(connection)}" for f in fields]
    columns = ", ".join(f"v{i}" for i in range(len(fields)))
    assignments = ", ".join(f"{_quote(f.column)} = v.v{i}" for i, f in enumerate(fields))
    for chunk in _chunks(rows, 1000):
        values = ", ".join(f"({', '.join(casts)}, %s::bigint)" for _ in chunk)
        cursor.execute(
            f"UPDATE {table} SET {assignments}, updated_at = %s FROM (VALUES {values}) AS v({columns}, id) "
            f"WHERE {table}.id = v.id",
            [now, *(value for row in chunk for value in row)],
        )


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


class _Table:
    """A multi-row INSERT into one model's table, of plain values in the order of ``attnames``."""

    def __init__(self, model: type[models.Model], attnames: Sequence[str]) -> None:
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        fields = [by_attname[name] for name in attnames]
        self.table = model._meta.db_table
        self.columns = [f.column for f in fields]
        # Dates and times need the backend's adaptation (time zones, SQLite's text form); other values go as they are.
        self.adapt = [(i, f) for i, f in enumerate(fields) if isinstance(f, models.DateField)]

    def insert(
        self, cursor: Any, rows: Iterable[Sequence[Any]], db: Callable[[models.Field[Any, Any], Any], Any]
    ) -> None:
        values = [list(row) for row in rows]
        for row in values:
            for i, model_field in self.adapt:
                row[i] = db(model_field, row[i])
        if not values:
            return
        columns = ", ".join(_quote(c) for c in self.columns)
        marks = "(" + ", ".join(["%s"] * len(self.columns)) + ")"
        sql = f"INSERT INTO {_quote(self.table)} ({columns}) VALUES "
        if connection.vendor == "postgresql":
            # COPY streams the rows in one go: no round trip, no statement, no parameter list per row.
            with cursor.cursor.copy(f"COPY {_quote(self.table)} ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            cursor.executemany(sql + marks, values)  # SQLite runs in process: one prepared statement is fastest


_PATRON_FIELDS: dict[str, models.Field[Any, Any]] = {f.attname: f for f in Patron._meta.concrete_fields}
# Every column of a new patron with its default (the model's), for cells the file leaves empty.
_PATRON_DEFAULTS = [(f.attname, f.get_default()) for f in Patron._meta.concrete_fields if not f.primary_key]
_PATRONS = _Table(Patron, [attname for attname, _ in _PATRON_DEFAULTS])
_BARCODES = _Table(Barcode, ["library_id", "patron_id", "number", "is_active", "issued_at"])
_PHONES = _Table(Phone, ["patron_id", "kind", "number"])
_ADDRESS_COLUMNS = ["patron_id", "kind", *ADDRESS_FIELDS]
_ADDRESSES = _Table(Address, _ADDRESS_COLUMNS)


def library_for(code: str | None) -> Library:
    """The library named by ``code``, or the only library when there is just one."""
    if code:
        library = Library.objects.filter(code=code).first()
        if library is None:
            codes = ", ".join(Library.objects.order_by("code").values_list("code", flat=True)) or "none yet"
            raise FieldError("library", f"There is no library with the code {code!r}; the codes are: {codes}.")
        return library
    libraries = list(Library.objects.order_by("code")[:2])
    if len(libraries) == 1:
        return libraries[0]
    if not libraries:
        raise FieldError("library", "There is no library yet; create one before importing patrons.")
    codes = ", ".join(Library.objects.order_by("code").values_list("code", flat=True))
    raise FieldError("library", f"Say which library the patrons belong to with --library (one of: {codes}).")
