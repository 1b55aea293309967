"""SIP2 framing: reading requests leniently and writing responses strictly (3M SIP 2.00).

Pure Python, no Django. A request is one line: a 2-digit code, fixed fields, ``|``-delimited variable
fields (each a 2-letter id and a value), and, with error detection, ``AY<digit>AZ<4 hex>``. Real clients
bend the spec (CRLF, fields in any order, ``|`` before ``AY``, odd dates, missing "required" fields), so the
reader accepts all of that and the writer emits the spec's order and widths only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_VALUE = 255
# The fixed part of each request we answer, code included.
FIXED = {
    "01": 21, "09": 39, "11": 40, "17": 20, "23": 23, "29": 40, "35": 20, "37": 27, "63": 33, "93": 4,
    "97": 2, "99": 10,
}  # fmt: skip
_TRAILER = re.compile(r"\|?AY(\d)AZ([0-9A-Fa-f]{4,5})$")
_RESEND = re.compile(r"AZ([0-9A-Fa-f]{4})$")
_FIELD_ID = re.compile(r"[A-Z]{2}")
_CONTROL = re.compile(r"[\x00-\x1f]")
_UNSAFE = re.compile(r"[|\r\n\x00]")


class MalformedMessage(ValueError):
    """The line is not a SIP2 request we can read (too short, unknown code, bad checksum, not text)."""


@dataclass(frozen=True)
class Request:
    code: str
    fixed: str  # the fixed fields after the code
    fields: dict[str, list[str]]
    sequence: str | None  # the AY digit, when error detection was used
    checksummed: bool

    def get(self, field_id: str, default: str = "") -> str:
        values = self.fields.get(field_id)
        return values[0] if values else default

    def has(self, field_id: str) -> bool:
        return field_id in self.fields


def checksum(data: bytes) -> str:
    """The AZ value for ``data`` (every byte from the code through ``AZ``): (-sum) & 0xFFFF in 4 hex digits."""
    return f"{(-sum(data)) & 0xFFFF:04X}"


def checksum_ok(data: bytes, given: str) -> bool:
    """Low 16 bits only: a client that writes 5 hex digits (sum ^ 0xFFFF) + 1 is right in those."""
    return (sum(data) + int(given, 16)) & 0xFFFF == 0


def parse(line: bytes, encoding: str = "cp850") -> Request:
    """One request line (terminator already removed or not). Raises ``MalformedMessage``."""
    raw = line.strip(b"\r\n\x00 ")
    if not raw[:2].isdigit():
        raise MalformedMessage("A SIP2 message starts with a 2-digit code.")
    text_probe = raw.decode("latin-1")
    sequence: str | None = None
    checksummed = False
    body = raw
    match = _TRAILER.search(text_probe)
    resend = _RESEND.search(text_probe) if match is None and raw[:2] == b"97" else None
    if match is not None or resend is not None:
        found = match or resend
        assert found is not None  # noqa: S101 - one of the two matched
        given = found.group(found.lastindex or 1)
        az_end = found.end() - len(given)
        if not checksum_ok(raw[:az_end], given):
            raise MalformedMessage("The checksum (AZ) does not match the message.")
        checksummed = True
        sequence = match.group(1) if match is not None else None
        body = raw[: found.start()]
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise MalformedMessage("The message is not text in the account's character set.") from None
    if _CONTROL.search(text):
        raise MalformedMessage("The message holds control characters.")
    code = text[:2]
    if code not in FIXED:
        raise MalformedMessage(f"Message {code} is not supported.")
    width = FIXED[code]
    if code == "17" and len(text) >= 23 and not _FIELD_ID.fullmatch(text[20:22]) and text[2:5].isdigit():
        width = 23  # Koha's emulator puts a language before the date
    if len(text) < width:
        raise MalformedMessage(f"Message {code} needs {width} characters of fixed fields; it has {len(text)}.")
    fields: dict[str, list[str]] = {}
    for piece in text[width:].split("|"):
        if len(piece) >= 2 and _FIELD_ID.fullmatch(piece[:2]):
            fields.setdefault(piece[:2], []).append(piece[2:])
    return Request(code=code, fixed=text[2:width], fields=fields, sequence=sequence, checksummed=checksummed)


def clean(value: object) -> str:
    """A variable field's value: no delimiter, CR, LF or NUL, at most 255 characters."""
    text = str(value)
    if _UNSAFE.search(text) is None:  # the usual case: nothing to replace
        return text[:MAX_VALUE]
    for bad in ("|", "\r", "\n", "\x00"):
        text = text.replace(bad, " " if bad != "|" else "/")
    return text[:MAX_VALUE]


@dataclass
class Response:
    code: str
    fixed: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)

    def add(self, field_id: str, value: object) -> Response:
        self.fields.append((field_id, clean(value)))
        return self

    def add_all(self, field_id: str, values: Iterable[object]) -> Response:
        for value in values:
            self.add(field_id, value)
        return self

    def text(self) -> str:
        return self.code + self.fixed + "".join(f"{fid}{value}|" for fid, value in self.fields)

    def encode(self, encoding: str, *, sequence: str | None, checksummed: bool) -> bytes:
        """The frame with its CR; with ``checksummed`` the AY (when ``sequence``) and AZ trailer."""
        data = self.text().encode(encoding, errors="replace")
        if checksummed:
            data += (f"AY{sequence}AZ" if sequence is not None else "AZ").encode("ascii")
            data += checksum(data).encode("ascii")
        return data + b"\r"


RESEND = Response("96")


def sip_date(moment: dt.datetime, zone: dt.tzinfo) -> str:
    """18 characters, YYYYMMDDZZZZHHMMSS, in local time (ZZZZ four spaces)."""
    local = moment.astimezone(zone)
    return f"{local:%Y%m%d}    {local:%H%M%S}"


def yes(value: bool) -> str:
    return "Y" if value else "N"


def flags(positions: Sequence[bool]) -> str:
    """The 14 patron status flags: 'Y' or a space, never 'N'."""
    return "".join("Y" if p else " " for p in positions)


def count(n: int) -> str:
    return f"{min(max(n, 0), 9999):04d}"
