"""Shared set-up for the NCIP tests: a library, a ReShare client with NCIP allowed, and helpers to POST."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from lxml import etree

from patronage.libraries.models import Branch, Library
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import ProtocolClient
from tests.factories import SYSTEM, make_branch, make_library, make_patron_type
from tests.fixtures import _lenient_lock_out  # noqa: F401 - an autouse fixture for these tests

NS = "http://www.niso.org/2008/ncip"
VERSION = "http://www.niso.org/schemas/ncip/v2_02/ncip_v2_02.xsd"
_SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("ncip_v2_02.xsd"))))


@pytest.fixture
def library() -> Library:
    library = make_library("north", name="North Library")
    make_patron_type(library, "adult", name="Adult", may_use_ill=True)
    make_patron_type(library, "community", name="Community", may_use_ill=False)
    return library


@pytest.fixture
def ill_center(library: Library) -> Branch:
    return make_branch(library, "ill", name="Interlibrary loan desk", is_checkout_center=True)


@pytest.fixture
def reshare(library: Library, ill_center: Branch) -> tuple[ProtocolClient, str]:
    data = {"name": "ReShare", "login": "reshare-north", "protocols": ["rest", "ncip"],
            "allowed_networks": "127.0.0.1\n10.0.0.0/8", "ill_center": str(ill_center.pk)}  # fmt: skip
    return clients.create_client(actor=SYSTEM, library=library, data=data)


def basic(login: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()


def post(body: str | bytes, auth: str | None = None, **extra: Any) -> Any:
    if auth:
        extra["HTTP_AUTHORIZATION"] = auth
    return Client().post("/ncip/", body, content_type="application/xml", **extra)


def valid(content: bytes) -> etree._Element:
    """The response parsed, after asserting that it is valid NCIP 2.02."""
    doc = etree.fromstring(content)
    assert _SCHEMA.validate(doc), str(_SCHEMA.error_log)
    return doc


def find(doc: etree._Element, path: str) -> list[Any]:
    found = doc.xpath(path, namespaces={"n": NS})
    assert isinstance(found, list)
    return list(found)


def text(doc: etree._Element, path: str) -> str:
    found = find(doc, path)
    return str(found[0]) if found and isinstance(found[0], str) else (found[0].text if found else "")


def message(service: str, inner: str, *, header: bool = True, qualified: bool = True) -> str:
    """A request as the XC toolkit writes it (ns1 prefix), optionally without header or with a bare version."""
    version = f'ns1:version="{VERSION}"' if qualified else f'version="{VERSION}"'
    head = (
        "<ns1:InitiationHeader><ns1:FromAgencyId><ns1:AgencyId>RESHARE</ns1:AgencyId></ns1:FromAgencyId>"
        "<ns1:ToAgencyId><ns1:AgencyId>NORTH</ns1:AgencyId></ns1:ToAgencyId>"
        "<ns1:ApplicationProfileType>EZBORROW</ns1:ApplicationProfileType></ns1:InitiationHeader>"
        if header
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ns1:NCIPMessage xmlns:ns1="{NS}" {version}>'
        f"<ns1:{service}>{head}{inner}</ns1:{service}></ns1:NCIPMessage>"
    )


def lookup(identifier: str, *elements: str, header: bool = True, qualified: bool = True) -> str:
    inner = f"<ns1:UserId><ns1:AgencyId>RESHARE</ns1:AgencyId><ns1:UserIdentifierValue>{identifier}</ns1:UserIdentifierValue></ns1:UserId>"
    inner += "".join(f"<ns1:UserElementType>{e}</ns1:UserElementType>" for e in elements)
    return message("LookupUser", inner, header=header, qualified=qualified)


def privileges(doc: etree._Element) -> dict[str, str]:
    """What lib-ncip-client reads: AgencyUserPrivilegeType -> UserPrivilegeStatusType."""
    out: dict[str, str] = {}
    for node in find(doc, "//n:UserPrivilege"):
        key = node.findtext(f"{{{NS}}}AgencyUserPrivilegeType")
        out[key] = node.findtext(f"{{{NS}}}UserPrivilegeStatus/{{{NS}}}UserPrivilegeStatusType")
    return out


def reshare_status(doc: etree._Element) -> str:
    """mod-rs's decision from a LookupUserResponse (protocols.md section 6.4): OK or BLOCKED."""
    if find(doc, "//n:Problem"):
        return "PROBLEM"
    value = privileges(doc).get("STATUS", "")
    translated = {"ACTIVE": "OK", "Y": "OK", "DELINQUENT": "OK", "N": "BLOCKED", "BARRED": "BLOCKED",
                  "EXPIRED": "BLOCKED"}.get(value, value)  # fmt: skip
    return "BLOCKED" if translated == "BLOCKED" else "OK"
