from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from patronage.core import clock
from patronage.core.audit import Actor
from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from patronage.patrons import services
from patronage.patrons.importer import FileRefused, import_patrons
from patronage.patrons.models import Address, Barcode, Patron, Phone
from tests.factories import SYSTEM, make_branch, make_library, make_patron, make_patron_type

pytestmark = pytest.mark.django_db

HEADER = (
    "person_id,barcode,first_name,last_name,middle_name,birth_date,patron_type,branch,primary_email,"
    "phone_mobile,address_line1,address_city,address_region,address_postal_code,address_country"
)
ROWS = [
    "P001,21000000000101,Zoë,Lindqvist,Anna,1991-03-14,adult,main,zoe@example.org,(312) 555-0142,"
    "1 Oak Street,Riverside,IL,60546,us",
    "P002,21000000000102,José,Hernández,,1978-11-02,student,east,jose@example.org,,2 Elm Street,Berwyn,IL,60402,US",
    "P003,,Thị Lan,Nguyễn,,,adult,main,,,,,,,",
]


@pytest.fixture
def library() -> Library:
    library = make_library("riverside", name="Riverside Public Library", time_zone="America/Chicago")
    make_branch(library, "main")
    make_branch(library, "east")
    make_patron_type(library, "adult", expiry_months=24)
    make_patron_type(library, "student")
    return library


def write(tmp_path: Path, lines: list[str], *, name: str = "feed.csv", prefix: str = "") -> Path:
    path = tmp_path / name
    path.write_text(prefix + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(path: Path, library: Library, **options: Any):
    return import_patrons(actor=Actor.cli(), library=library, path=path, **options)


def test_a_feed_creates_patrons_with_barcodes_phones_addresses_and_default_expiry(tmp_path, library) -> None:
    with clock.frozen(dt.datetime(2026, 3, 1, 15, tzinfo=dt.UTC)):
        report = run(write(tmp_path, [HEADER, *ROWS]), library)

    assert (report.created, report.updated, report.bad_rows, report.written) == (3, 0, 0, True)
    assert report.ignored_columns == ["middle_name"]
    zoe = Patron.objects.get(library=library, person_id="P001")
    assert (zoe.first_name, zoe.last_name, zoe.birth_date) == ("Zoë", "Lindqvist", dt.date(1991, 3, 14))
    assert zoe.patron_type.code == "adult"
    assert zoe.registered_branch.code == "main"
    assert zoe.expires_on == dt.date(2028, 3, 1)  # today at the library + the type's 24 months
    assert zoe.status == Patron.Status.ACTIVE
    assert list(zoe.phones.values_list("kind", "number")) == [("mobile", "+13125550142")]
    assert zoe.addresses.get().country == "US"
    assert zoe.barcodes.get().number == "21000000000101"
    lan = Patron.objects.get(person_id="P003")
    assert not lan.barcodes.exists()
    assert not lan.addresses.exists()
    assert lan.birth_date is None
    event = AuditEvent.objects.get(action="patrons.imported")
    assert event.library_id == library.pk
    assert event.channel == AuditEvent.Channel.CLI
    assert event.detail["created"] == 3
    assert event.detail["file"] == "feed.csv"


def test_an_update_changes_only_the_fields_the_file_gives(tmp_path, library) -> None:
    patron = make_patron(
        library, person_id="P001", first_name="Ada", last_name="Lovelace", primary_email="ada@example.org",
        alternate_email="ada@example.net", phones={"home": "312 555 0100"}, barcode="21000000000001",
    )  # fmt: skip
    services.set_addresses(
        actor=SYSTEM, patron=patron, addresses=[{"kind": "home", "line1": "1 Old Road", "city": "X"}]
    )
    before = Patron.objects.get(pk=patron.pk)
    lines = [
        "person_id;first_name;primary_email;phone_mobile;phone_home;status;address_line1;address_city",
        "P001;;ADA.L@example.org;312-555-0199;(312) 555-0100;Inactive;;",
    ]

    report = run(write(tmp_path, lines), library)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    after = Patron.objects.get(pk=patron.pk)
    assert after.first_name == "Ada"  # empty cell: left as it is
    assert after.last_name == "Lovelace"  # column absent: left as it is
    assert after.alternate_email == "ada@example.net"
    assert after.primary_email == "ADA.L@example.org"
    assert after.status == Patron.Status.INACTIVE
    assert after.expires_on == before.expires_on
    assert after.updated_at >= before.updated_at
    assert dict(after.phones.values_list("kind", "number")) == {"mobile": "+13125550199", "home": "+13125550100"}
    assert after.addresses.get().line1 == "1 Old Road"  # no address cells given
    assert report.changed_columns == {"primary_email": 1, "status": 1, "phone_mobile": 1}

    # The same file again changes nothing.
    again = run(write(tmp_path, lines), library)
    assert (again.updated, again.unchanged) == (0, 1)
    assert Patron.objects.get(pk=patron.pk).updated_at == after.updated_at


def test_a_value_equal_to_the_record_is_neither_checked_again_nor_written(tmp_path, library) -> None:
    patron = make_patron(library, person_id="P001", primary_email="ok@example.org")
    Patron.objects.filter(pk=patron.pk).update(primary_email="legacy@@example.org")  # from an older system
    lines = ["person_id,primary_email,status", "P001,legacy@@example.org,ACTIVE"]

    report = run(write(tmp_path, lines), library)

    assert (report.bad_rows, report.updated, report.unchanged) == (0, 0, 1)


def test_a_new_barcode_replaces_the_active_one_and_keeps_the_old_one_as_history(tmp_path, library) -> None:
    patron = make_patron(library, person_id="P001", barcode="21000000000001")
    lines = ["person_id,barcode,address_line1,address_city", "P001,21000000000002,5 New Street,Riverside"]

    report = run(write(tmp_path, lines), library)

    assert report.barcodes_replaced == 1
    rows = sorted(patron.barcodes.values_list("number", "is_active"))
    assert rows == [("21000000000001", False), ("21000000000002", True)]
    assert patron.barcodes.get(number="21000000000001").replaced_at is not None
    assert patron.addresses.get().line1 == "5 New Street"
    # The old number cannot come back, to this patron or another.
    refused = run(write(tmp_path, ["person_id,barcode", "P001,21000000000001", "P009,21000000000001"]), library)
    assert {(p.line, p.column) for p in refused.problems} >= {(2, "barcode")}


def test_an_address_is_replaced_as_a_unit_but_columns_the_file_lacks_are_kept(tmp_path, library) -> None:
    patron = make_patron(library, person_id="P001")
    home = {"kind": "home", "line1": "1 Old Road", "line2": "Apt 4", "city": "Riverside", "region": "IL",
            "postal_code": "60546", "country": "US"}  # fmt: skip
    services.set_addresses(actor=SYSTEM, patron=patron, addresses=[home])
    lines = ["person_id,address_line1,address_line2,address_city", "P001,9 New Road,,Berwyn"]

    report = run(write(tmp_path, lines), library)

    assert report.changed_columns == {"address": 1}
    address = patron.addresses.get()
    assert (address.line1, address.line2, address.city) == ("9 New Road", "", "Berwyn")
    assert (address.region, address.postal_code, address.country) == ("IL", "60546", "US")
    with pytest.raises(FileRefused, match="address_line1 and address_city"):
        run(write(tmp_path, ["person_id,address_city", "P001,Berwyn"]), library)


def test_bad_rows_are_reported_with_line_and_column_and_nothing_is_written(tmp_path, library) -> None:
    existing = make_patron(library, person_id="P777", primary_email="keep@example.org", barcode=None)
    lines = [
        HEADER,
        ROWS[0],
        "P002,21000000000102,José,Hernández,,1978-13-02,nosuch,east,not-an-email,12,2 Elm Street,,IL,,",
        '"P003",,,,,,,,,,,,,,',
        "P777,,,,,,,,new@example.org,,,,,,",
    ]

    report = run(write(tmp_path, lines), library)

    assert not report.written
    assert report.bad_rows == 2
    found = {(p.line, p.column) for p in report.problems}
    assert found == {
        (3, "birth_date"), (3, "patron_type"), (3, "primary_email"), (3, "phone_mobile"), (3, "address_city"),
        (4, "first_name"), (4, "last_name"), (4, "patron_type"), (4, "branch"),
    }  # fmt: skip
    assert "nosuch" in next(p.message for p in report.problems if p.column == "patron_type" and p.line == 3)
    assert not Patron.objects.exclude(pk=existing.pk).exists()
    assert Patron.objects.get(pk=existing.pk).primary_email == "keep@example.org"
    assert not AuditEvent.objects.filter(action="patrons.imported").exists()
    assert AuditEvent.objects.get(action="patrons.import_refused").detail["bad_rows"] == 2

    out = StringIO()
    with pytest.raises(CommandError, match="2 bad rows"):
        call_command("import_patrons", str(write(tmp_path, lines)), "--library", "riverside", stdout=out)
    assert "line 3, column primary_email:" in out.getvalue()
    assert "Nothing was written" in out.getvalue()


def test_keep_good_rows_writes_the_good_ones_and_reports_the_bad(tmp_path, library) -> None:
    lines = [HEADER, ROWS[0], ROWS[1].replace("jose@example.org", "jose@"), ROWS[2]]

    report = run(write(tmp_path, lines), library, keep_good_rows=True)

    assert report.written
    assert (report.created, report.bad_rows) == (2, 1)
    assert [(p.line, p.column) for p in report.problems] == [(3, "primary_email")]
    assert set(Patron.objects.values_list("person_id", flat=True)) == {"P001", "P003"}
    assert AuditEvent.objects.get(action="patrons.imported").detail["bad_rows"] == 1


def test_dry_run_checks_everything_and_writes_nothing(tmp_path, library) -> None:
    report = run(write(tmp_path, [HEADER, *ROWS]), library, dry_run=True)

    assert (report.created, report.bad_rows, report.written) == (3, 0, False)
    assert not Patron.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_person_id_or_barcode_twice_in_the_file_names_both_lines(tmp_path, library) -> None:
    lines = [
        HEADER,
        ROWS[0],
        ROWS[1],
        ROWS[0].replace("21000000000101", "21000000000109"),
        ROWS[2].replace(",,", ",21000000000102,", 1),
    ]

    report = run(write(tmp_path, lines), library, keep_good_rows=True)

    messages = {(p.line, p.column): p.message for p in report.problems}
    assert "also on line 4" in messages[(2, "person_id")]
    assert "also on line 2" in messages[(4, "person_id")]
    assert "also on line 5" in messages[(3, "barcode")]
    assert "also on line 3" in messages[(5, "barcode")]
    assert not Patron.objects.exists()


def test_a_semicolon_file_with_a_byte_order_mark_is_read(tmp_path, library) -> None:
    lines = [HEADER.replace(",", ";"), *(row.replace(",", ";") for row in ROWS)]

    report = run(write(tmp_path, lines, prefix="\ufeff"), library)

    assert (report.created, report.bad_rows) == (3, 0)
    assert Patron.objects.filter(person_id="P001", first_name="Zoë").exists()


def test_patrons_of_another_library_are_untouched(tmp_path, library) -> None:
    other = make_library("hillcrest")
    theirs = make_patron(other, person_id="P001", first_name="Other", barcode="21000000000101")

    report = run(write(tmp_path, [HEADER, ROWS[0]]), library)

    assert report.created == 1
    ours = Patron.objects.get(library=library, person_id="P001")
    assert ours.pk != theirs.pk
    assert ours.barcodes.get().number == "21000000000101"  # barcodes are unique per library only
    assert Patron.objects.get(pk=theirs.pk).first_name == "Other"
    assert Patron.objects.filter(library=other).count() == 1


def test_unknown_columns_and_rows_of_the_wrong_width_are_refused(tmp_path, library) -> None:
    with pytest.raises(FileRefused, match="did you mean 'primary_email'"):
        run(write(tmp_path, ["person_id,primary_emial", "P1,a@example.org"]), library)
    with pytest.raises(FileRefused, match="no person_id column"):
        run(write(tmp_path, ["first_name,last_name", "Ada,Lovelace"]), library)
    report = run(write(tmp_path, ["person_id,first_name", "P1,Ada,Lovelace"]), library)
    assert [(p.line, p.column) for p in report.problems] == [(2, "(row)")]


def test_worker_processes_give_the_same_answer(tmp_path, library) -> None:
    lines = [HEADER, *ROWS, ROWS[0].replace("P001", "P004").replace("0101", "0104").replace("zoe@", "bad@@")]

    report = run(write(tmp_path, lines), library, jobs=2, batch_size=2, keep_good_rows=True)

    assert (report.created, report.bad_rows) == (3, 1)
    assert [(p.line, p.column) for p in report.problems] == [(5, "primary_email")]
    assert Phone.objects.count() == 1
    assert Address.objects.count() == 2
    assert Barcode.objects.count() == 2
