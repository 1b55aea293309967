"""Synthetic patrons at scale, written straight through the application's database driver.

The schema comes from the Django migrations; only the rows are written here, with COPY on PostgreSQL and
multi-row ``executemany`` on SQLite, because the ORM would take minutes per million rows. A fixed seed makes
every run produce the same data set, so figures from different runs compare like with like.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max

from patronage.blocks.models import Block
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.models import Branch, Library, Membership, Role
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Barcode, Patron, PatronType

SEED = 20260601
STAFF_USERNAME = "bench-desk"
LIBRARY_PREFIX = "bench-"
# Library sizes of a small consortium: one large public library, a university and three smaller ones.
LIBRARY_SHARES = (0.40, 0.25, 0.15, 0.12, 0.08)
LIBRARY_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/New_York",
)
PATRON_TYPES = (  # code, name, fine limit, share of patrons
    ("adult", "Adult", Decimal("5.00"), 0.62),
    ("child", "Child", Decimal("2.00"), 0.18),
    ("student", "Student", Decimal("10.00"), 0.15),
    ("staff", "Staff", Decimal("20.00"), 0.05),
)
FEE_AMOUNTS = (
    "0.25",
    "0.50",
    "1.00",
    "1.50",
    "2.00",
    "2.50",
    "3.00",
    "5.00",
    "7.50",
    "10.00",
    "15.00",
    "25.00",
)
CHUNK = 20_000

# The most common US surnames and given names in rough frequency order (Census 2010 / SSA); a Zipf-like
# weight over the list plus a long tail of invented names gives 3-letter prefixes realistic result sizes.
SURNAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox
Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes
Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno
West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson
Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto
Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley
Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins
Hoffman Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval O'Brien Müller Søndergaard""".split()  # noqa: SIM905 (a word list reads better as text)
GIVEN_NAMES = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan
Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark Margaret
Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa
George Deborah Timothy Stephanie Ronald Dorothy Jason Rebecca Edward Sharon Jeffrey Laura Ryan Cynthia Jacob Amy
Gary Kathleen Nicholas Angela Eric Shirley Jonathan Brenda Stephen Emma Larry Anna Justin Pamela Scott Nicole
Brandon Samantha Benjamin Katherine Samuel Christine Gregory Helen Alexander Debra Patrick Rachel Frank Carolyn
Raymond Janet Jack Maria Dennis Olivia Jerry Heather Tyler Catherine Aaron Diane Jose Julie Adam Victoria Nathan
Joyce Henry Lauren Zachary Kelly Douglas Christina Peter Ruth Kyle Joan Noah Virginia Ethan Judith Jeremy Evelyn
Walter Hannah Christian Andrea Keith Megan Roger Cheryl Terry Jacqueline Austin Madison Sean Teresa Gerald Abigail
Carl Sophia Harold Martha Dylan Sara Arthur Gloria Lawrence Janice Jordan Kathryn Jesse Ann Bryan Isabella Billy
Judy Bruce Charlotte Gabriel Julia Joe Grace Logan Amber Alan Alice Juan Jean Albert Denise Willie Frances Elijah
Danielle Wayne Marilyn Randy Natalie Vincent Diana Mason Beverly Roy Brittany Ralph Theresa Bobby Kayla Russell
Alexis Bradley Doris Philip Lori Eugene Tiffany José Zoë Björn""".split()  # noqa: SIM905
ONSETS = ("b", "br", "c", "ch", "d", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "r", "s", "st", "t",
          "th", "v", "w", "z", "sh", "bl", "tr", "dr")  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "y", "ie")
CODAS = ("", "n", "r", "l", "s", "t", "m", "nd", "rt", "ck", "ng", "ss")
SUFFIXES = (
    "",
    "",
    "son",
    "er",
    "ley",
    "man",
    "ton",
    "berg",
    "ski",
    "ez",
    "ford",
    "well",
    "ing",
    "stein",
)
DOMAINS = (
    "example.org",
    "example.com",
    "mail.example.net",
    "uni.example.edu",
    "example.co",
)


@dataclass
class Summary:
    """What was generated: counts per table and the ids the workloads need."""

    patrons: int = 0
    barcodes: int = 0
    fees: int = 0
    payments: int = 0
    waivers: int = 0
    blocks: int = 0
    library_ids: list[int] = field(default_factory=list)
    staff_library_id: int = 0
    staff_user_id: int = 0


def _zipf_cum_weights(count: int, offset: float) -> list[float]:
    total = 0.0
    cum = []
    for rank in range(count):
        total += 1.0 / (rank + offset)
        cum.append(total)
    return cum


def _invented_names(rnd: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        word = rnd.choice(ONSETS) + rnd.choice(VOWELS) + rnd.choice(CODAS)
        if rnd.random() < 0.6:
            word += rnd.choice(VOWELS) + rnd.choice(CODAS)
        word += rnd.choice(SUFFIXES)
        names.add(word.capitalize())
    return sorted(names)


class _NamePicker:
    """Common names by a Zipf-like weight (about 25% of people), the rest uniform over invented names."""

    def __init__(self, rnd: random.Random, common: Sequence[str], common_share: float, tail: int) -> None:
        self.rnd = rnd
        self.common = list(common)
        self.cum = _zipf_cum_weights(len(common), 6.0)
        self.share = common_share
        self.tail = _invented_names(rnd, tail)

    def pick(self, k: int) -> list[str]:
        rnd = self.rnd
        common = rnd.choices(self.common, cum_weights=self.cum, k=k)
        tail = rnd.choices(self.tail, k=k)
        return [c if rnd.random() < self.share else t for c, t in zip(common, tail, strict=True)]


def _next_id(model: Any) -> int:
    return int(model.objects.aggregate(m=Max("id"))["m"] or 0) + 1


def _columns(model: Any, names: Sequence[str]) -> list[str]:
    return [model._meta.get_field(name).column for name in names]


class _Writer:
    """Writes rows of one table through the driver: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self) -> None:
        self.vendor = connection.vendor

    def write(self, model: Any, fields: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        table = model._meta.db_table
        columns = _columns(model, fields)
        # A column the generator does not name (a field added to the model since) gets the model's default,
        # so that a new NOT NULL field with a default does not stop the bench.
        defaults = [f for f in model._meta.concrete_fields if f.name not in fields and f.has_default()]
        if defaults:
            columns += [f.column for f in defaults]
            tail = tuple(f.get_default() for f in defaults)
            rows = [row + tail for row in rows]
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                # psycopg 3: the Django cursor wraps the driver's cursor, whose copy() streams rows.
                sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with cursor.cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                cursor.executemany(sql, [tuple(map(_sqlite_value, row)) for row in rows])


def _sqlite_value(value: Any) -> Any:
    # Stored the way Django's SQLite backend stores them: naive UTC text, ISO dates, 0/1, decimal text.
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _setup_libraries(
    rnd: random.Random,
) -> tuple[list[Library], dict[int, list[int]], dict[int, list[int]]]:
    libraries, branches, types = [], {}, {}
    tag = _next_id(Library)
    for index, zone in enumerate(LIBRARY_ZONES):
        library = Library.objects.create(
            code=f"{LIBRARY_PREFIX}{tag}-{index + 1}",
            name=f"Bench Library {index + 1}",
            time_zone=zone,
        )
        libraries.append(library)
        branches[library.pk] = [
            Branch.objects.create(
                library=library,
                code=f"b{b}",
                name=f"Branch {b}",
                is_checkout_center=b < 3,
            ).pk
            for b in range(rnd.randint(3, 8))
        ]
        types[library.pk] = [
            PatronType.objects.create(library=library, code=code, name=name, fine_limit=limit).pk
            for code, name, limit, _share in PATRON_TYPES
        ]
    return libraries, branches, types


def _setup_staff(library: Library) -> int:
    user_model = get_user_model()
    user = user_model.objects.filter(username=STAFF_USERNAME).first()
    if user is None:
        user = user_model.objects.create_user(username=STAFF_USERNAME, password=None)
    role = Role.objects.create(library=library, name="Desk staff", permissions=[Permission.VIEW_PATRONS.value])
    membership, _ = Membership.objects.get_or_create(user=user, library=library)
    membership.roles.add(role)
    return int(user.pk)


PATRON_FIELDS = (
    "id", "library", "patron_type", "registered_branch", "first_name", "last_name", "birth_date", "person_id",
    "status", "expires_on", "signature_on_file", "staff_notes", "primary_email", "alternate_email",
    "notification_method", "created_at", "updated_at",
)  # fmt: skip
BARCODE_FIELDS = (
    "id",
    "library",
    "patron",
    "number",
    "is_active",
    "issued_at",
    "replaced_at",
)
FEE_FIELDS = (
    "id",
    "library",
    "patron",
    "branch",
    "kind",
    "amount",
    "description",
    "created_at",
)
PAYMENT_FIELDS = (
    "id",
    "library",
    "patron",
    "branch",
    "amount",
    "method",
    "idempotency_key",
    "note",
    "received_at",
)
WAIVER_FIELDS = ("id", "library", "patron", "fee", "amount", "reason", "waived_at")
BLOCK_FIELDS = ("id", "library", "patron", "comment", "created_at", "created_by_label", "ends_at", "lifted_at",
                "lifted_by_label", "lift_comment")  # fmt: skip


def generate(
    patrons: int,
    *,
    seed: int = SEED,
    now: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> Summary:
    """Write ``patrons`` patrons with barcodes, fees, payments, waivers and blocks; return what was written.

    Runs in one transaction. On PostgreSQL the caller may disable foreign-key triggers for the session
    (``session_replication_role``) first: every reference written here points at a row written before it.
    """
    rnd = random.Random(seed)
    now = now or dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    today = now.date()
    surnames = _NamePicker(rnd, SURNAMES, 0.25, 6_000)
    given = _NamePicker(rnd, GIVEN_NAMES, 0.7, 1_500)
    summary = Summary()
    writer = _Writer()
    say = progress or (lambda _message: None)
    with transaction.atomic():
        libraries, branches, types = _setup_libraries(rnd)
        summary.library_ids = [lib.pk for lib in libraries]
        summary.staff_library_id = libraries[0].pk
        summary.staff_user_id = _setup_staff(libraries[0])
        ids = {model: _next_id(model) for model in (Patron, Barcode, Fee, Payment, Waiver, Block)}
        lib_cum = list(_cum(LIBRARY_SHARES))
        type_cum = list(_cum([t[3] for t in PATRON_TYPES]))
        old_barcode_seq = 0
        for start in range(0, patrons, CHUNK):
            size = min(CHUNK, patrons - start)
            lasts, firsts = surnames.pick(size), given.pick(size)
            lib_picks = rnd.choices(range(len(libraries)), cum_weights=lib_cum, k=size)
            type_picks = rnd.choices(range(len(PATRON_TYPES)), cum_weights=type_cum, k=size)
            rows: dict[Any, list[tuple[Any, ...]]] = {m: [] for m in (Patron, Barcode, Fee, Payment, Waiver, Block)}
            for i in range(size):
                pid = ids[Patron]
                ids[Patron] += 1
                lib = libraries[lib_picks[i]]
                library_id = lib.pk
                branch_id = rnd.choice(branches[library_id])
                first, last = firsts[i], lasts[i]
                created = now - dt.timedelta(days=rnd.randint(1, 15 * 365), seconds=rnd.randint(0, 86_399))
                expires = today + dt.timedelta(days=rnd.randint(-400, 3 * 365))  # about 1 in 7 expired
                local = f"{first}.{last}.{pid}".lower().replace("'", "")
                email = f"{local}@{rnd.choice(DOMAINS)}" if rnd.random() < 0.92 else ""
                alternate = f"{first[0]}{last}{pid}@alt.example.net".lower() if rnd.random() < 0.08 else ""
                rows[Patron].append((
                    pid, library_id, types[library_id][type_picks[i]], branch_id, first, last,
                    dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randint(0, 30_000)),
                    f"P{pid:09d}" if rnd.random() < 0.6 else None,
                    "active" if rnd.random() < 0.97 else "inactive",
                    expires, rnd.random() < 0.8, "", email, alternate,
                    "email" if email else "mail", created, created,
                ))  # fmt: skip
                # About 15% have old cards kept as history; about 1% have no active card at all.
                issued = created
                for _old in range(rnd.choice((1, 1, 2)) if rnd.random() < 0.15 else 0):
                    old_barcode_seq += 1
                    replaced = issued + dt.timedelta(days=rnd.randint(30, 900))
                    rows[Barcode].append(
                        (ids[Barcode], library_id, pid, f"3{lib_picks[i]:03d}{old_barcode_seq:010d}", False, issued,
                         replaced)
                    )  # fmt: skip
                    ids[Barcode] += 1
                    issued = replaced
                if rnd.random() >= 0.01:
                    rows[Barcode].append(
                        (
                            ids[Barcode],
                            library_id,
                            pid,
                            f"2{lib_picks[i]:03d}{pid:010d}",
                            True,
                            issued,
                            None,
                        )
                    )
                    ids[Barcode] += 1
                if rnd.random() < 0.40:
                    _ledger(rnd, rows, ids, pid, library_id, branch_id, created, now)
                if rnd.random() < 0.03:
                    _block(rnd, rows, ids, pid, library_id, now)
            writer.write(Patron, PATRON_FIELDS, rows[Patron])
            writer.write(Barcode, BARCODE_FIELDS, rows[Barcode])
            writer.write(Fee, FEE_FIELDS, rows[Fee])
            writer.write(Payment, PAYMENT_FIELDS, rows[Payment])
            writer.write(Waiver, WAIVER_FIELDS, rows[Waiver])
            writer.write(Block, BLOCK_FIELDS, rows[Block])
            summary.patrons += len(rows[Patron])
            summary.barcodes += len(rows[Barcode])
            summary.fees += len(rows[Fee])
            summary.payments += len(rows[Payment])
            summary.waivers += len(rows[Waiver])
            summary.blocks += len(rows[Block])
            say(f"  {summary.patrons:,} / {patrons:,} patrons")
        _reset_sequences()
    return summary


def _cum(shares: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for share in shares:
        total += share
        yield total


def _ledger(
    rnd: random.Random,
    rows: dict[Any, list[tuple[Any, ...]]],
    ids: dict[Any, int],
    pid: int,
    library_id: int,
    branch_id: int,
    created: dt.datetime,
    now: dt.datetime,
) -> None:
    """Fees (1-6, mostly 1-2), a payment for about half of them, a waiver for about one in eight."""
    count = min(6, 1 + int(rnd.expovariate(1.2)))
    amounts = []
    first_fee = ids[Fee]
    span = max(1, int((now - created).total_seconds()))
    for _ in range(count):
        amount = Decimal(rnd.choice(FEE_AMOUNTS))
        amounts.append(amount)
        at = created + dt.timedelta(seconds=rnd.randint(0, span))
        rows[Fee].append(
            (ids[Fee], library_id, pid, branch_id, rnd.choice(("overdue", "overdue", "overdue", "lost", "damage")),
             amount, "", at)
        )  # fmt: skip
        ids[Fee] += 1
    total = sum(amounts, Decimal(0))
    if rnd.random() < 0.5:
        paid = total if rnd.random() < 0.6 else (total / 2).quantize(Decimal("0.01"))
        rows[Payment].append(
            (ids[Payment], library_id, pid, branch_id, paid, rnd.choice(("cash", "card", "online")),
             f"bench-{ids[Payment]}", "", now - dt.timedelta(days=rnd.randint(0, 300)))
        )  # fmt: skip
        ids[Payment] += 1
    elif rnd.random() < 0.25:
        which = rnd.randrange(count)
        rows[Waiver].append(
            (ids[Waiver], library_id, pid, first_fee + which, amounts[which], "Goodwill",
             now - dt.timedelta(days=rnd.randint(0, 300)))
        )  # fmt: skip
        ids[Waiver] += 1


def _block(
    rnd: random.Random, rows: dict[Any, list[tuple[Any, ...]]], ids: dict[Any, int], pid: int, library_id: int,
    now: dt.datetime,
) -> None:  # fmt: skip
    """About two thirds of these are in force (2% of patrons); the rest were lifted and stay as history."""
    created = now - dt.timedelta(days=rnd.randint(1, 700))
    lifted = created + dt.timedelta(days=rnd.randint(1, 60)) if rnd.random() < 0.33 else None
    if lifted is not None and lifted > now:
        lifted = now
    ends = now + dt.timedelta(days=rnd.randint(1, 90)) if rnd.random() < 0.2 else None
    rows[Block].append(
        (ids[Block], library_id, pid, "Returned damaged resources; see notes.", created, "bench", ends, lifted,
         "bench" if lifted else "", "Settled." if lifted else "")
    )  # fmt: skip
    ids[Block] += 1


def _reset_sequences() -> None:
    # Rows were written with explicit ids; the sequences must follow so later inserts do not collide.
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in (Patron, Barcode, Fee, Payment, Waiver, Block):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 1))"
            )


def existing(patrons: int) -> Summary | None:
    """The data set of an earlier run with the same size, or None (then the caller generates afresh)."""
    user = get_user_model().objects.filter(username=STAFF_USERNAME).first()
    if user is None or Patron.objects.count() != patrons:
        return None
    membership = Membership.objects.filter(user=user).order_by("library_id").first()
    if membership is None:
        return None
    library_ids = list(
        Library.objects.filter(code__startswith=LIBRARY_PREFIX).order_by("id").values_list("id", flat=True)
    )
    return Summary(
        patrons=patrons,
        barcodes=Barcode.objects.count(),
        fees=Fee.objects.count(),
        payments=Payment.objects.count(),
        waivers=Waiver.objects.count(),
        blocks=Block.objects.count(),
        library_ids=library_ids,
        staff_library_id=membership.library_id,
        staff_user_id=int(user.pk),
    )
