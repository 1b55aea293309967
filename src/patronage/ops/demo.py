"""The demo consortium: two libraries, their staff and a few hundred patrons in every state staff meet.

Everything a patron has is made through the domain services (as the command-line actor), so the demo data
obeys the same rules and leaves the same audit trail as real work. Libraries, branches, patron types, roles
and staff accounts are plain configuration and are written with the ORM. A fixed seed makes every load the
same apart from dates, which are counted back from today so that "expired" and "recent" stay true.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from patronage.blocks import services as blocks
from patronage.circulation import services as desk
from patronage.core import clock
from patronage.core.audit import Actor
from patronage.core.errors import DomainError
from patronage.credentials import services as credentials
from patronage.fines import services as fines
from patronage.fines.models import Fee
from patronage.libraries import services as libraries
from patronage.libraries.models import Branch, Library, Role
from patronage.patrons import services as patrons
from patronage.patrons.models import Patron, PatronType
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources import services as catalog
from patronage.resources.models import Resource, ResourceType
from patronage.tickets import services as tickets

SEED = 20260115
DEMO_LIBRARY_CODES = ("riverside", "hillcrest")


@dataclass(frozen=True)
class SignIn:
    username: str
    password: str
    name: str
    roles: tuple[tuple[str, str], ...]  # (library code, role name)

    @property
    def description(self) -> str:
        return "; ".join(f"{role} at {code}" for code, role in self.roles)


# Published in docs/demo.md. Demo passwords only: a real installation never loads this data.
SIGN_INS = (
    SignIn("desk", "demo-desk-2026", "Dana Desk", (("riverside", "Desk staff"),)),
    SignIn("patronadmin", "demo-patronadmin-2026", "Pat Admin", (("riverside", "Patron administrator"),)),
    SignIn("libadmin", "demo-libadmin-2026", "Lee Brarian", (("riverside", "Library administrator"),)),
    SignIn("hillcrest", "demo-hillcrest-2026", "Hana Hill", (("hillcrest", "Patron administrator"),)),
    SignIn(
        "consortium",
        "demo-consortium-2026",
        "Connie Sortium",
        (("riverside", "Library administrator"), ("hillcrest", "Library administrator")),
    ),
)


@dataclass(frozen=True)
class PortalSignIn:
    """A demo patron with a portal password (published in docs/demo.md)."""

    library: str
    identifier: str  # the Person-ID, which signs in as the barcode does
    password: str
    name: str
    description: str


# Published in docs/demo.md. Demo passwords only.
PORTAL_SIGN_INS = (
    PortalSignIn(
        "riverside",
        "R-DEMO-1",
        "demo-patron-2026",
        "Maya Okafor",
        "books laptops, cameras and the podcast kit; one checkout out, a weekly series, history, a ticket",
    ),
    PortalSignIn("hillcrest", "H-DEMO-1", "demo-student-2026", "Sam Whitfield", "a student booking study rooms"),
)


@dataclass(frozen=True)
class TypeSpec:
    code: str
    name: str
    fine_limit: str
    expiry_months: int
    may_self_update: bool
    may_use_ill: bool
    loan_limit: int | None
    share: float


@dataclass(frozen=True)
class LibrarySpec:
    code: str
    name: str
    time_zone: str
    country: str
    patrons: int
    branches: tuple[tuple[str, str, bool], ...]  # code, name, is checkout center
    types: tuple[TypeSpec, ...]
    cities: tuple[tuple[str, str, str], ...]  # city, region, postal code
    area_codes: tuple[str, ...]
    barcode_prefix: str
    person_id_prefix: str | None  # a college issues ids; a public library does not
    email_domain: str


LIBRARIES = (
    LibrarySpec(
        code="riverside",
        name="Riverside Public Library",
        time_zone="America/Chicago",
        country="US",
        patrons=300,
        branches=(
            ("main", "Main Library", True),
            ("east", "East Side Branch", True),
            ("bookmobile", "Bookmobile", False),
        ),
        types=(
            TypeSpec("adult", "Adult", "5.00", 24, True, True, 50, 0.58),
            TypeSpec("child", "Child", "2.00", 24, False, False, 20, 0.2),
            TypeSpec("senior", "Senior", "5.00", 36, True, True, 50, 0.12),
            TypeSpec("nonres", "Non-resident", "0.00", 12, False, False, 10, 0.05),
            TypeSpec("staff", "Staff", "20.00", 36, True, True, None, 0.05),
        ),
        cities=(
            ("Riverside", "IL", "60546"),
            ("North Riverside", "IL", "60546"),
            ("Berwyn", "IL", "60402"),
            ("Brookfield", "IL", "60513"),
            ("La Grange Park", "IL", "60526"),
            ("Chicago", "IL", "60608"),
        ),
        area_codes=("708", "312", "773", "630", "872"),
        barcode_prefix="21001",
        person_id_prefix=None,
        email_domain="example.org",
    ),
    LibrarySpec(
        code="hillcrest",
        name="Hillcrest College Library",
        time_zone="America/New_York",
        country="US",
        patrons=60,
        branches=(
            ("founders", "Founders Hall Library", True),
            ("science", "Science and Engineering Library", True),
        ),
        types=(
            TypeSpec("student", "Student", "10.00", 12, True, True, 30, 0.7),
            TypeSpec("faculty", "Faculty", "25.00", 36, True, True, None, 0.15),
            TypeSpec("staff", "Staff", "15.00", 24, True, False, 40, 0.1),
            TypeSpec("community", "Community borrower", "5.00", 12, False, False, 5, 0.05),
        ),
        cities=(
            ("Hillcrest", "NY", "10977"),
            ("Spring Valley", "NY", "10977"),
            ("Nanuet", "NY", "10954"),
            ("Pearl River", "NY", "10965"),
        ),
        area_codes=("845", "914", "646", "917"),
        barcode_prefix="29002",
        person_id_prefix="H",
        email_domain="example.net",
    ),
)

_GIVEN_NAMES_TEXT = (
    "James Mary Robert Patricia Michael Jennifer David Linda William Elizabeth Emma Olivia Liam Noah Ava Sophia "
    "Mateo Isabella Ethan Mia Lucas Harper Jamal Aaliyah DeShawn Keisha Imani Grace Henry Margaret Walter "
    "Dorothy Eleanor Theodore Zoë José María Chloé Björn Søren Łukasz Małgorzata Siobhán Seán Aoife François "
    "Anaïs Jürgen Renée Noémie Thảo Minh Linh Hüseyin Ayşe Oluwaseun Chidi Amara Kwame Priya Arjun Ananya Wei "
    "Mei Hiroshi Yuki Sun-hee Ji-woo Fatima Omar Layla Yusuf Mary-Kate Jean-Luc Anne-Marie Ines Rafael Camila"
)
GIVEN_NAMES = _GIVEN_NAMES_TEXT.split()
_SURNAMES_TEXT = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodríguez Martínez Hernández López González Nguyễn "
    "Trần Lê Phạm Kim Park Lee Chen Wang Zhang Patel Shah Singh O'Brien O'Connor McCarthy D'Angelo Müller "
    "Schröder Østergaard Kowalski Wiśniewski Dubois Lefèvre Okafor Adeyemi Mensah Yılmaz Öztürk Haddad Al-Sayed "  # noqa: RUF001
    "Cohen Goldberg Rossi Bianchi Johansson Andersson Nakamura Tanaka Sato Washington Jackson Thompson White "
    "Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill Green Adams Baker Nelson Carter "
    "Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart Morris Murphy Cook Rogers "
    "Morgan Cooper Peterson Reed Bailey Bell Gómez Kelly Howard Ward Cox Díaz Richardson Wood Watson Brooks"
)
SURNAMES = _SURNAMES_TEXT.split()
STREETS = (
    "Oak Street", "Maple Avenue", "Cedar Lane", "Elm Street", "Riverside Drive", "Harlem Avenue",
    "Longcommon Road", "Park Place", "Washington Boulevard", "Lincoln Avenue", "Forest Avenue",
    "Burlington Street", "Hillcrest Road", "College Avenue", "Chestnut Court", "Willow Way",
)  # fmt: skip
FEE_TEXTS = (
    (Fee.Kind.OVERDUE, ("0.50", "1.25", "2.00", "3.50"), "Overdue: returned late"),
    (Fee.Kind.LOST, ("12.99", "18.50", "24.99"), "Lost item: replacement cost"),
    (Fee.Kind.DAMAGE, ("4.00", "7.50", "15.00"), "Damaged item: water damage"),
    (Fee.Kind.CARD, ("2.00",), "Replacement card"),
    (Fee.Kind.SERVICE, ("0.75", "1.50"), "Printing and copies"),
)
BLOCK_COMMENTS = (
    "Returned a laptop with a cracked screen twice this term; talk to the branch manager before lifting.",
    "Address could not be confirmed; ask for proof of address at the desk, then lift.",
    "Behaviour incident on the second floor; suspended for the period agreed with the patron.",
    "Card reported as used by someone else; see the patron in person before lifting.",
)
# Letters that do not decompose into an ASCII letter and a mark, for the e-mail addresses.
_ASCII = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "ı": "i", "đ": "d"})  # noqa: RUF001


@dataclass
class Summary:
    libraries: int = 0
    branches: int = 0
    staff: int = 0
    patrons: int = 0
    fees: int = 0
    payments: int = 0
    waivers: int = 0
    blocks: int = 0
    resources: int = 0
    reservations: int = 0
    sign_ins: Sequence[SignIn] = SIGN_INS
    portal_sign_ins: Sequence[PortalSignIn] = ()


@dataclass
class _Person:
    """What the generator decided about one patron before calling the services."""

    first_name: str
    last_name: str
    birth_date: dt.date
    patron_type: PatronType
    branch: Branch
    created_days_ago: int
    expires_on: dt.date
    status: str = Patron.Status.ACTIVE
    person_id: str | None = None
    fees: list[tuple[str, str, str]] = field(default_factory=list)  # kind, amount, description
    pay: Decimal = Decimal(0)
    waive: bool = False
    block: str | None = None
    replaced_barcode: bool = False
    lost_card: bool = False
    note: str = ""


def exists() -> bool:
    return Library.objects.filter(code__in=DEMO_LIBRARY_CODES).exists()


def load() -> Summary:
    """Create the demo consortium in one transaction. The caller checks ``exists()`` first."""
    with transaction.atomic():
        return _Loader(random.Random(SEED)).run()  # noqa: S311 - demo data, not secrets


class _Loader:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.actor = Actor.cli()
        self.summary = Summary()
        self.libraries: dict[str, Library] = {}
        self.roles: dict[tuple[str, str], Role] = {}
        self.barcode_seq: dict[str, int] = {}
        self.payment_seq = 0
        self.active: dict[str, list[Patron]] = {}  # active patrons as created, per library code
        self.now = clock.now()

    def run(self) -> Summary:
        for spec in LIBRARIES:
            self._library(spec)
        self._staff()
        for spec in LIBRARIES:
            library = self.libraries[spec.code]
            showcase = self._showcase(spec, library)
            for person in showcase + self._crowd(spec, library, spec.patrons - len(showcase)):
                self._patron(spec, library, person)
        self._lending_riverside(self.libraries["riverside"])
        self._lending_hillcrest(self.libraries["hillcrest"])
        self.summary.portal_sign_ins = PORTAL_SIGN_INS
        return self.summary

    @contextmanager
    def _days_ago(self, days: int) -> Iterator[None]:
        """Run the services as if it were ``days`` days ago, so the history has plausible dates."""
        with clock.frozen(self.now - dt.timedelta(days=days)):
            yield

    # Configuration ------------------------------------------------------------------------------

    def _library(self, spec: LibrarySpec) -> None:
        # The consortium account is every library's first administrator; the other accounts come later.
        first_admin = next(s for s in SIGN_INS if len(s.roles) == len(LIBRARIES))
        first, _, last = first_admin.name.partition(" ")
        (code, name, lends), *other_branches = spec.branches
        data = {
            "code": spec.code, "name": spec.name, "currency": "USD", "time_zone": spec.time_zone,
            "country": spec.country, "branch_code": code, "branch_name": name, "branch_is_checkout_center": lends,
            "branch_email": f"{code}@{spec.email_domain}",
        }  # fmt: skip
        account = {
            "username": first_admin.username, "password": first_admin.password, "first_name": first,
            "last_name": last, "email": f"{first_admin.username}@example.org",
        }  # fmt: skip
        library, _ = libraries.create_library(actor=self.actor, data=data, administrator=account)
        if not self.libraries:
            self.summary.staff += 1  # made with the first library; the others attach the same account
        self.libraries[spec.code] = library
        self.summary.libraries += 1
        self.summary.branches += 1
        for code, name, lends in other_branches:
            data = {"code": code, "name": name, "is_checkout_center": lends, "email": f"{code}@{spec.email_domain}"}
            libraries.save_branch(actor=self.actor, library=library, branch=None, data=data)
            self.summary.branches += 1
        for t in spec.types:
            patrons.save_patron_type(
                actor=self.actor, library=library, patron_type=None,
                data={
                    "code": t.code, "name": t.name, "fine_limit": t.fine_limit, "expiry_months": t.expiry_months,
                    "loan_limit": t.loan_limit, "may_self_update": t.may_self_update, "may_use_ill": t.may_use_ill,
                },
            )  # fmt: skip

    def _staff(self) -> None:
        first_admin = next(s for s in SIGN_INS if len(s.roles) == len(LIBRARIES))
        for role in Role.objects.filter(library__in=self.libraries.values()).select_related("library"):
            self.roles[(role.library.code, role.name)] = role
        for sign_in in SIGN_INS:
            if sign_in is first_admin:
                continue
            first, _, last = sign_in.name.partition(" ")
            for code, role_name in sign_in.roles:
                library = self.libraries[code]
                data = {
                    "username": sign_in.username, "first_name": first, "last_name": last,
                    "email": f"{sign_in.username}@example.org", "password": sign_in.password,
                    "home_branch": str(library.branches.order_by("pk").values_list("pk", flat=True).first()),
                }  # fmt: skip
                libraries.save_membership(
                    actor=self.actor, library=library, membership=None, data=data,
                    roles=[self.roles[(code, role_name)].pk],
                )  # fmt: skip
            self.summary.staff += 1

    # Who the patrons are ------------------------------------------------------------------------

    def _type(self, library: Library, code: str) -> PatronType:
        return PatronType.objects.get(library=library, code=code)

    def _branch(self, library: Library, index: int = 0) -> Branch:
        return list(library.branches.order_by("pk"))[index]

    def _born(self, low: int, high: int) -> dt.date:
        today = self.now.date()
        return today - dt.timedelta(days=self.rng.randint(low * 365, high * 365))

    def _future(self) -> dt.date:
        return self.now.date() + dt.timedelta(days=self.rng.randint(20, 900))

    def _showcase(self, spec: LibrarySpec, library: Library) -> list[_Person]:
        """Named patrons in one known state each, listed in docs/demo.md (they get the first barcodes)."""
        today = self.now.date()
        main, other = self._branch(library), self._branch(library, 1)

        def person(first: str, last: str, born: dt.date, type_code: str, **kwargs: Any) -> _Person:
            return _Person(
                first_name=first, last_name=last, birth_date=born, patron_type=self._type(library, type_code),
                branch=kwargs.pop("branch", main), created_days_ago=kwargs.pop("created_days_ago", 900),
                expires_on=kwargs.pop("expires_on", today + dt.timedelta(days=400)), **kwargs,
            )  # fmt: skip

        if spec.code == "riverside":
            return [
                person(
                    "Zoë", "Lindqvist", dt.date(1991, 3, 14), "adult",
                    fees=[("overdue", "3.50", "Overdue: 7 days late"), ("lost", "24.99", "Lost item: replacement cost")],
                ),
                person(
                    "José", "Hernández", dt.date(1978, 11, 2), "adult", branch=other,
                    fees=[("damage", "6.00", "Damaged item: torn pages")], pay=Decimal("2.00"),
                ),
                person(
                    "Thị Lan", "Nguyễn", dt.date(1986, 6, 30), "adult",
                    block="Repeated damage to borrowed laptops; talk to the branch manager before lifting.",
                ),
                person("Siobhán", "O'Brien", dt.date(1969, 1, 21), "senior", expires_on=today - dt.timedelta(days=45)),
                person(
                    "Anna-Maria", "Kowalski-Nowak", dt.date(1995, 9, 9), "adult", replaced_barcode=True,
                    fees=[("card", "2.00", "Replacement card")], waive=True,
                ),
                person("Henry", "Walker", dt.date(1950, 4, 1), "senior", status=Patron.Status.INACTIVE,
                       note="Moved out of the district; record kept until the last loan is settled."),
                person("John", "Smith", dt.date(1984, 7, 19), "adult"),
                person("John", "Smith", dt.date(1984, 7, 19), "adult", branch=other, created_days_ago=300,
                       note="Possibly the same person as another John Smith; check before merging."),
                person("Oluwaseun", "Adeyemi", self._born(8, 11), "child",
                       fees=[("overdue", "2.50", "Overdue: picture books")]),
                person("Mary-Kate", "O'Connor", dt.date(1999, 12, 5), "adult", lost_card=True),
            ]  # fmt: skip
        return [
            person(
                "Priya", "Raman", dt.date(2004, 2, 17), "student", person_id="H00100001",
                fees=[("lost", "12.50", "Lost item: course reader")],
            ),
            person(
                "Jürgen", "Schröder", dt.date(1965, 8, 8), "faculty", person_id="H00100002",
                block="Privileges suspended pending review by the Dean of Students.",
            ),
            person("Emily", "Chen", dt.date(2005, 5, 23), "student", person_id="H00100003"),
            person("Emily", "Chen", dt.date(2005, 5, 23), "student", person_id="H00100004", branch=other,
                   note="Registered twice at orientation? Compare with the other Emily Chen."),
        ]  # fmt: skip

    def _crowd(self, spec: LibrarySpec, library: Library, count: int) -> list[_Person]:
        rng = self.rng
        types = [self._type(library, t.code) for t in spec.types]
        weights = [t.share for t in spec.types]
        branches = list(library.branches.order_by("pk"))
        today = self.now.date()
        people: list[_Person] = []
        for n in range(count):
            patron_type = rng.choices(types, weights)[0]
            first = rng.choice(GIVEN_NAMES)
            last = rng.choice(SURNAMES)
            if rng.random() < 0.06:
                last = f"{last}-{rng.choice(SURNAMES)}"
            ages = {"child": (5, 15), "student": (17, 30), "senior": (65, 92)}.get(patron_type.code, (19, 80))
            person = _Person(
                first_name=first, last_name=last, birth_date=self._born(*ages), patron_type=patron_type,
                branch=rng.choices(branches, [6, 3, 1][: len(branches)])[0],
                created_days_ago=rng.randint(200, 2500), expires_on=self._future(),
            )  # fmt: skip
            if spec.person_id_prefix:
                person.person_id = f"{spec.person_id_prefix}{200001 + n:08d}"
            roll = rng.random()
            if roll < 0.08:  # over the limit
                person.fees = [self._fee(), self._fee(), ("lost", "18.50", "Lost item: replacement cost")]
            elif roll < 0.14:  # partly paid
                person.fees = [self._fee(), self._fee()]
                person.pay = Decimal("1.00")
            elif roll < 0.18:
                person.fees = [self._fee()]
                person.waive = True
            elif roll < 0.28:  # a small balance, under the limit
                person.fees = [("overdue", rng.choice(("0.50", "1.25")), "Overdue: returned late")]
            if rng.random() < 0.03:
                person.block = rng.choice(BLOCK_COMMENTS)
            if rng.random() < 0.06:
                person.expires_on = today - dt.timedelta(days=rng.randint(3, min(400, person.created_days_ago - 10)))
            if rng.random() < 0.08:
                person.replaced_barcode = True
            people.append(person)
        return people

    def _fee(self) -> tuple[str, str, str]:
        kind, amounts, text = self.rng.choice(FEE_TEXTS)
        return kind, self.rng.choice(amounts), text

    # Writing through the services ---------------------------------------------------------------

    def _next_barcode(self, spec: LibrarySpec, *, replacement: bool = False) -> str:
        """First cards count up from 1 (the showcase patrons get the first ones), replacement cards from 1e8."""
        key = f"{spec.code}-new" if replacement else spec.code
        self.barcode_seq[key] = self.barcode_seq.get(key, 0) + 1
        return f"{spec.barcode_prefix}{self.barcode_seq[key] + (100_000_000 if replacement else 0):09d}"

    def _contact(
        self, spec: LibrarySpec, person: _Person
    ) -> tuple[dict[str, Any], dict[str, str | None], list[dict[str, str]]]:
        rng = self.rng
        local = _ascii(f"{person.first_name}.{person.last_name}").lower().replace("'", "")
        data: dict[str, Any] = {
            "primary_email": f"{local}{rng.randint(1, 99)}@{spec.email_domain}" if rng.random() < 0.92 else "",
            "alternate_email": f"{local[:1]}{rng.randint(100, 999)}@example.net" if rng.random() < 0.1 else "",
            "notification_method": rng.choices(["email", "sms", "mail", "phone", "none"], [70, 15, 8, 4, 3])[0],
        }
        if not data["primary_email"] and data["notification_method"] == "email":
            data["notification_method"] = "mail"

        def phone() -> str:
            return f"({rng.choice(spec.area_codes)}) 555-01{rng.randint(0, 99):02d}"

        phones: dict[str, str | None] = {}
        if rng.random() < 0.85:
            phones["mobile"] = phone()
        if rng.random() < 0.25:
            phones["home"] = phone()
        if rng.random() < 0.08:
            phones["work"] = phone()
        city, region, postal = rng.choice(spec.cities)
        addresses = [
            {
                "kind": "home", "line1": f"{rng.randint(1, 4999)} {rng.choice(STREETS)}",
                "line2": f"Apt {rng.randint(1, 30)}" if rng.random() < 0.2 else "",
                "city": city, "region": region, "postal_code": postal, "country": spec.country,
            }
        ]  # fmt: skip
        if spec.person_id_prefix and rng.random() < 0.3:
            addresses.append({"kind": "mailing", "line1": f"Box {rng.randint(100, 2999)}, Hillcrest College",
                              "city": "Hillcrest", "region": "NY", "postal_code": "10977", "country": "US"})  # fmt: skip
        return data, phones, addresses

    def _patron(self, spec: LibrarySpec, library: Library, person: _Person) -> None:
        data, phones, addresses = self._contact(spec, person)
        data.update(
            first_name=person.first_name, last_name=person.last_name, birth_date=person.birth_date,
            person_id=person.person_id, patron_type=person.patron_type.code, registered_branch=person.branch.code,
            status=person.status, expires_on=person.expires_on, signature_on_file=self.rng.random() < 0.7,
            staff_notes=person.note,
        )  # fmt: skip
        created = person.created_days_ago
        with self._days_ago(created):
            patron = patrons.create_patron(
                actor=self.actor, library=library, data=data, barcode=self._next_barcode(spec),
                phones=phones, addresses=addresses[:1],
            )  # fmt: skip
        self.summary.patrons += 1
        if person.status == Patron.Status.ACTIVE:
            self.active.setdefault(library.code, []).append(patron)
        # A mailing address added later, and now and then a new mobile number, through their own services.
        if len(addresses) > 1:
            with self._days_ago(created - 30):
                patrons.set_addresses(actor=self.actor, patron=patron, addresses=addresses)
        if self.rng.random() < 0.05:
            mobile = f"({self.rng.choice(spec.area_codes)}) 555-01{self.rng.randint(0, 99):02d}"
            with self._days_ago(created - 60):
                patrons.set_phones(actor=self.actor, patron=patron, phones={"mobile": mobile})
        if person.replaced_barcode:
            with self._days_ago(self.rng.randint(190, created - 1)):
                patrons.issue_barcode(
                    actor=self.actor, patron=patron, number=self._next_barcode(spec, replacement=True)
                )
        if person.lost_card:
            with self._days_ago(12):
                patrons.deactivate_barcode(actor=self.actor, patron=patron)
        self._ledger(library, patron, person)
        if person.block:
            with self._days_ago(self.rng.randint(1, 60)):
                blocks.block_patron(actor=self.actor, patron=patron, comment=person.block)
            self.summary.blocks += 1

    def _ledger(self, library: Library, patron: Patron, person: _Person) -> None:
        if not person.fees:
            return
        days = sorted((self.rng.randint(20, 180) for _ in person.fees), reverse=True)
        added: list[Fee] = []
        for (kind, amount, text), ago in zip(person.fees, days, strict=True):
            with self._days_ago(ago):
                added.append(fines.add_fee(actor=self.actor, patron=patron, amount=amount, kind=kind, description=text))
            self.summary.fees += 1
        if person.pay:
            self.payment_seq += 1
            with self._days_ago(days[-1] - 5):
                fines.take_payment(
                    actor=self.actor, patron=patron, amount=person.pay, method=self.rng.choice(("cash", "card")),
                    idempotency_key=f"demo-{library.code}-{self.payment_seq}", branch=person.branch.pk,
                )  # fmt: skip
            self.summary.payments += 1
        if person.waive:
            with self._days_ago(days[-1] - 10):
                fines.waive_fee(actor=self.actor, fee=added[-1], reason="Waived at the desk: first offence.")
            self.summary.waivers += 1

    # Lending: checkout centers, resources, reservations and portal patrons ------------------------

    def _at(self, library: Library, days: int, hour: int) -> dt.datetime:
        zone = ZoneInfo(library.time_zone)
        day = self.now.astimezone(zone).date() + dt.timedelta(days=days)
        return dt.datetime.combine(day, dt.time(hour), tzinfo=zone)

    def _kind(self, library: Library, name: str, centers: list[Branch], **data: Any) -> ResourceType:
        return catalog.save_resource_type(
            actor=self.actor, library=library, data={"name": name, "centers": [c.pk for c in centers], **data}
        )

    def _thing(
        self, library: Library, kind: ResourceType, center: Branch, identifier: str, name: str, **data: Any
    ) -> Resource:
        self.summary.resources += 1
        fields = {"identifier": identifier, "name": name, "resource_type": kind.pk, "center": center.pk, **data}
        return catalog.save_resource(actor=self.actor, library=library, data=fields)

    def _portal_patron(self, library: Library, sign_in: PortalSignIn, branch: Branch, type_code: str) -> Patron:
        first, _, last = sign_in.name.partition(" ")
        patron = patrons.create_patron(
            actor=self.actor, library=library, barcode=f"{sign_in.identifier.replace('-', '')}0001",
            data={
                "first_name": first, "last_name": last, "person_id": sign_in.identifier,
                "patron_type": self._type(library, type_code).pk, "registered_branch": branch.pk,
                "primary_email": f"{first.lower()}.{last.lower()}@example.org", "birth_date": "1995-04-12",
            },
        )  # fmt: skip
        credentials.set_password(patron, sign_in.password, actor=self.actor)
        self.summary.patrons += 1
        return patron

    def _book(
        self, patron: Patron, center: Branch, start: dt.datetime, end: dt.datetime, *things: Resource, **kw: Any
    ) -> Reservation:
        made = reservations.create_reservation(
            actor=self.actor, patron=patron, center=center, starts_at=start, ends_at=end,
            lines=[{"resource": t.pk} for t in things], **kw,
        )  # fmt: skip
        self.summary.reservations += 1
        return made

    def _lending_riverside(self, library: Library) -> None:
        main, east = self._branch(library), self._branch(library, 1)
        reservations.save_center_policy(
            actor=self.actor, center=main,
            data={
                "portal_message": "<h2>Media Lab</h2><p>Laptops, cameras and the podcast kit are lent from the Media "
                "Lab on the second floor, 9:00 to 20:00. Laptops come charged; please bring them back with "
                "their chargers.</p>",
                "max_duration_minutes": 7 * 24 * 60, "overdue_fee": "5.00", "overdue_grace_minutes": 30,
            },
        )  # fmt: skip
        reservations.save_center_policy(
            actor=self.actor, center=east,
            data={"approval_required": True, "title_required": True, "max_duration_minutes": 3 * 24 * 60},
        )  # fmt: skip
        laptops = self._kind(library, "Laptops", [main, east], description="Windows and Linux laptops.")
        cameras = self._kind(library, "Cameras", [main])
        dslr = self._kind(library, "DSLR cameras", [main], parent=cameras.pk, buffer_after_minutes=30)
        kits = self._kind(library, "Podcast kits", [main], description="Everything to record a conversation.")
        parts = self._kind(library, "Kit parts", [main], parent=kits.pk, visible_in_portal=False)
        drones = self._kind(
            library, "Drones", [main], requires_authorization=True,
            description="Lent after the drone safety class; ask at the desk.",
        )  # fmt: skip
        laptop = [
            self._thing(library, laptops, main, f"LAP-{n}", f"Laptop {n}", description="14-inch, 16 GB")
            for n in range(1, 7)
        ]
        east_laptop = self._thing(library, laptops, east, "LAP-E1", "East laptop")
        canon = self._thing(library, dslr, main, "CAM-1", "Canon EOS R6", accessories="Two batteries, charger, strap")
        self._thing(library, dslr, main, "CAM-2", "Nikon D750", condition_notes="Small scratch on the grip")
        kit = self._thing(
            library, kits, main, "POD-1", "Podcast kit A", accessories="SD card (32 GB)",
            description="Two microphones on stands, a recorder and headphones in a case.",
        )  # fmt: skip
        for n, name in enumerate(("Microphone 1", "Microphone 2", "Zoom H6 recorder"), start=1):
            self._thing(library, parts, main, f"POD-1-{n}", name, contained_in=kit.pk)
        self._thing(library, drones, main, "DRN-1", "DJI Mini 4")

        maya = self._portal_patron(library, PORTAL_SIGN_INS[0], main, "adult")
        # Past lending, with the clock moved back: returned checkouts for the history, one of them late.
        for days, thing, back_hour in ((-30, laptop[1], 15), (-12, kit, 15), (-5, canon, 19)):
            with clock.frozen(self._at(library, days - 1, 12)):
                made = self._book(maya, main, self._at(library, days, 10), self._at(library, days, 16), thing)
            with clock.frozen(self._at(library, days, 10)):
                out = desk.check_out(actor=self.actor, reservation=made, scanned=[thing.identifier])
            with clock.frozen(self._at(library, days, back_hour)):
                desk.check_in(actor=self.actor, checkout=out)
        with clock.frozen(self._at(library, -2, 12)):
            current = self._book(maya, main, self._at(library, -1, 10), self._at(library, 2, 16), laptop[2])
        with clock.frozen(self._at(library, -1, 10)):
            desk.check_out(actor=self.actor, reservation=current, scanned=[laptop[2].identifier])
        monday = (7 - self.now.weekday()) % 7 or 7
        reservations.create_series(
            actor=self.actor, patron=maya, center=main, starts_at=self._at(library, monday, 15),
            ends_at=self._at(library, monday, 17), repeat={"frequency": "weekly", "count": 6},
            lines=[{"resource": kit.pk}], title="Podcast club",
        )  # fmt: skip
        self.summary.reservations += 6
        self._book(
            maya, east, self._at(library, 3, 9), self._at(library, 3, 12), east_laptop,
            title="Grant writing class", channel="portal",
        )  # fmt: skip
        tickets.report_problem(
            actor=Actor.patron(maya.pk), patron=maya, center=main,
            data={"summary": "Podcast kit: one microphone crackles",
                  "description": "Microphone 2 crackles when the cable moves. The rest worked well."},
        )  # fmt: skip

        # The desk's day: pickups today and a few more patrons' bookings through the week.
        others = self.active.get(library.code, [])[10:40]
        booked = 0
        for n, patron in enumerate(others):
            if booked >= 14:
                break
            day, hour = n % 7, 9 + (n * 3) % 9
            thing = laptop[n % len(laptop)] if n % 3 else canon
            try:
                self._book(patron, main, self._at(library, day, hour), self._at(library, day, hour + 2), thing)
                booked += 1
            except DomainError:
                continue  # a patron whose standing refuses, or a slot already taken: the demo moves on

    def _lending_hillcrest(self, library: Library) -> None:
        center = self._branch(library)
        reservations.save_center_policy(
            actor=self.actor, center=center, data={"max_duration_minutes": 4 * 60, "min_lead_minutes": 60}
        )
        rooms = self._kind(library, "Study rooms", [center], description="Rooms for 2 to 6 people, with a screen.")
        room = [self._thing(library, rooms, center, f"ROOM-{n}", f"Study room {n}") for n in (101, 102, 103)]
        sam = self._portal_patron(library, PORTAL_SIGN_INS[1], center, "student")
        self._book(sam, center, self._at(library, 1, 14), self._at(library, 1, 16), room[0], channel="portal")


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in ".-"))
