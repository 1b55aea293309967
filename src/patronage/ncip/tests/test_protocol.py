"""The door: client authentication, safe and lenient reading, and Problems instead of errors."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from django.db import OperationalError
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from patronage.ncip import messages
from patronage.ncip.views import MAX_BODY
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import ProtocolClient
from patronage.resourcesharing.tests.test_eligibility import CURRENT
from tests.factories import SYSTEM, make_patron

from .conftest import NS, basic, lookup, message, post, privileges, text, valid

pytestmark = pytest.mark.django_db


def _problem(response: Any) -> str:
    return text(valid(response.content), "//n:Problem/n:ProblemType")


# --- client authentication ---------------------------------------------------------------------


def test_without_credentials_the_client_is_asked_to_sign_in(reshare: tuple[ProtocolClient, str]) -> None:
    response = post(lookup(CURRENT))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert _problem(response) == "Agency Authentication Failed"


def test_a_wrong_secret_is_refused_and_repeated_ones_lock_the_client(
    reshare: tuple[ProtocolClient, str], settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 2
    client, secret = reshare
    assert post(lookup(CURRENT), basic(client.login, "pcs_guess")).status_code == 401
    locked = post(lookup(CURRENT), basic(client.login, "pcs_guess"))
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert _problem(locked) == "Agency Authentication Failed"
    assert post(lookup(CURRENT), basic(client.login, secret)).status_code == 429


def test_a_client_calling_from_an_address_not_listed_is_refused(library: Library) -> None:
    data = {"name": "Remote", "login": "remote", "protocols": ["ncip"], "allowed_networks": "203.0.113.0/24"}
    client, secret = clients.create_client(actor=SYSTEM, library=library, data=data)
    make_patron(library, barcode=CURRENT)
    response = post(lookup(CURRENT), basic(client.login, secret))  # the test client calls from 127.0.0.1
    assert response.status_code == 401
    event = AuditEvent.objects.filter(action="protocol_client.authenticate").latest("pk")
    assert event.detail["outcome"] == "address_not_allowed"
    assert not AuditEvent.objects.filter(action="patron.ill_validated").exists()


def test_a_client_without_ncip_allowed_is_refused(library: Library) -> None:
    data = {"name": "Add-on", "login": "addon", "protocols": ["rest"], "allowed_networks": "127.0.0.1"}
    client, secret = clients.create_client(actor=SYSTEM, library=library, data=data)
    assert post(lookup(CURRENT), basic(client.login, secret)).status_code == 401


def test_the_secret_may_come_as_from_agency_authentication(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    make_patron(library, barcode=CURRENT)
    _, secret = reshare
    inner = f"<ns1:UserId><ns1:UserIdentifierValue>{CURRENT}</ns1:UserIdentifierValue></ns1:UserId>"
    body = message("LookupUser", inner).replace(
        "</ns1:FromAgencyId>",
        f"</ns1:FromAgencyId><ns1:FromAgencyAuthentication>{secret}</ns1:FromAgencyAuthentication>",
    )
    response = post(body)
    assert response.status_code == 200
    assert privileges(valid(response.content))["STATUS"] == "ACTIVE"


def test_a_bearer_secret_is_accepted(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    make_patron(library, barcode=CURRENT)
    _, secret = reshare
    assert privileges(valid(post(lookup(CURRENT), f"Bearer {secret}").content))["STATUS"] == "ACTIVE"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Basic", clients.AUTHORIZATION_FORM),
        ("Basic " + base64.b64encode(b"reshare-north:").decode(), "Send both the client login and its secret."),
        ("Basic not*base64", "The Authorization header is not valid base64 of login:secret."),
    ],
)
def test_a_malformed_authorization_header_is_refused_alike_by_ncip_and_rest(
    reshare: tuple[ProtocolClient, str], header: str, detail: str
) -> None:
    ncip = post(lookup(CURRENT), header)
    assert ncip.status_code == 401
    assert text(valid(ncip.content), "//n:Problem/n:ProblemDetail") == detail
    rest = Client().post("/api/v1/ill/validate/", {"identifier": CURRENT}, content_type="application/json",
                         HTTP_AUTHORIZATION=header)  # fmt: skip
    assert rest.status_code == 401
    assert rest.json()["detail"] == detail


def test_only_post_is_answered(reshare: tuple[ProtocolClient, str]) -> None:
    from django.test import Client

    response = Client().get("/ncip/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    valid(response.content)


# --- hostile and malformed bodies ----------------------------------------------------------------

_BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    f'<NCIPMessage xmlns="{NS}"><LookupUser><UserId><UserIdentifierValue>&lol3;</UserIdentifierValue>'
    "</UserId></LookupUser></NCIPMessage>"
)
_EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    f'<NCIPMessage xmlns="{NS}"><LookupUser><UserId><UserIdentifierValue>&secret;</UserIdentifierValue>'
    "</UserId></LookupUser></NCIPMessage>"
)
_EXTERNAL_DTD = (
    '<?xml version="1.0"?><!DOCTYPE NCIPMessage SYSTEM "http://203.0.113.1/ncip.dtd">'
    f'<NCIPMessage xmlns="{NS}"><LookupUser/></NCIPMessage>'
)
_QUADRATIC = (
    '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "' + "x" * 5000 + '">]>'
    f'<NCIPMessage xmlns="{NS}"><LookupUser><UserId><UserIdentifierValue>' + "&a;" * 40
    + "</UserIdentifierValue></UserId></LookupUser></NCIPMessage>"
)  # fmt: skip
_DEEP = f'<NCIPMessage xmlns="{NS}"><LookupUser>' + "<Ext>" * 5000 + "</Ext>" * 5000 + "</LookupUser></NCIPMessage>"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_BILLION_LAUGHS, "Invalid Message Syntax Error"),
        (_EXTERNAL_ENTITY, "Invalid Message Syntax Error"),
        (_EXTERNAL_DTD, "Invalid Message Syntax Error"),
        (_QUADRATIC, "Invalid Message Syntax Error"),
        (_DEEP, "Invalid Message Syntax Error"),
        ("<NCIPMessage><LookupUser>", "Invalid Message Syntax Error"),
        ("not xml at all", "Invalid Message Syntax Error"),
        ("", "Invalid Message Syntax Error"),
        (b"\x00\xff\xfe binary", "Invalid Message Syntax Error"),
        ('<NCIPMessage xmlns="urn:not-ncip"><LookupUser/></NCIPMessage>', "Invalid Message Syntax Error"),
        (f'<Other xmlns="{NS}"/>', "Invalid Message Syntax Error"),
        (f'<NCIPMessage xmlns="{NS}"><LookupUser/><LookupUser/></NCIPMessage>', "Invalid Message Syntax Error"),
        (f'<NCIPMessage xmlns="{NS}"><RecallItem/></NCIPMessage>', "Unsupported Service"),
        (f'<NCIPMessage xmlns="{NS}"><RequestItem/></NCIPMessage>', "Unsupported Service"),
        (f'<NCIPMessage xmlns="{NS}"><LookupUserResponse/></NCIPMessage>', "Unsupported Service"),
    ],
    ids=[
        "billion laughs",
        "external entity",
        "external dtd",
        "quadratic blowup",
        "deep nesting",
        "truncated",
        "not xml",
        "empty",
        "binary",
        "wrong namespace",
        "wrong root",
        "two services",
        "unknown service",
        "request item",
        "a response sent to us",
    ],
)
def test_a_bad_message_gets_a_problem_never_an_error(
    reshare: tuple[ProtocolClient, str], body: str | bytes, expected: str
) -> None:
    client, secret = reshare
    response = post(body, basic(client.login, secret))
    assert response.status_code == 200
    assert _problem(response) == expected
    assert b"root:" not in response.content  # nothing of /etc/passwd


def test_an_oversized_body_is_refused_unread(reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    body = lookup("x" * (MAX_BODY + 10))
    response = post(body, basic(client.login, secret))
    assert response.status_code == 413
    assert _problem(response) == "Invalid Message Syntax Error"


def test_unknown_user_answers_with_the_identifier(reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    doc = valid(post(lookup("NOBODY-1"), basic(client.login, secret)).content)
    assert text(doc, "//n:LookupUserResponse/n:Problem/n:ProblemType") == "Unknown User"
    assert text(doc, "//n:Problem/n:ProblemElement") == "UserIdentifierValue"
    assert text(doc, "//n:Problem/n:ProblemValue") == "NOBODY-1"
    # the header is echoed around the problem too
    assert text(doc, "//n:ResponseHeader/n:ToAgencyId/n:AgencyId") == "RESHARE"


# --- fuzzing the reader --------------------------------------------------------------------------

_NAMES = st.sampled_from(["NCIPMessage", "LookupUser", "UserId", "UserIdentifierValue", "AuthenticationInput",
                          "AuthenticationInputData", "AuthenticationInputType", "InitiationHeader", "ItemId",
                          "AcceptItem", "CheckOutItem", "CheckInItem", "RequestId", "Ext", "x"])  # fmt: skip
_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)


@st.composite
def _xmlish(draw: st.DrawFn) -> bytes:
    """Mostly-XML documents: random NCIP element names, text and entity-ish noise, sometimes cut short."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        name = draw(_NAMES)
        kind = draw(st.integers(0, 4))
        if kind == 0:
            parts.append(f"<{name}>")
        elif kind == 1:
            parts.append(f"</{name}>")
        elif kind == 2:
            parts.append(draw(_TEXT))
        elif kind == 3:
            parts.append(f'<{name} xmlns="{NS}" version="{draw(_TEXT)}">')
        else:
            parts.append(draw(st.sampled_from(["&amp;", "&x;", "<!DOCTYPE a>", "<?pi?>", "<!-- c -->", "]]>"])))
    text = "".join(parts)
    cut = draw(st.integers(0, len(text)))
    return (text if draw(st.booleans()) else text[:cut]).encode(
        draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])), "replace"
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), _xmlish()))
def test_the_reader_never_raises_anything_but_a_problem(body: bytes) -> None:
    outcome = ""
    try:
        request = messages.parse(body)
    except messages.NcipProblem as exc:
        outcome = exc.problem_type
    else:
        outcome = "parsed" if request.service else ""
    assert outcome in {"Invalid Message Syntax Error", "Unsupported Service", "parsed"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_xmlish())
def test_the_endpoint_answers_every_fuzzed_body_with_valid_ncip(
    reshare: tuple[ProtocolClient, str], body: bytes
) -> None:
    client, secret = reshare
    response = post(body, basic(client.login, secret))
    assert response.status_code == 200
    valid(response.content)


# --- failures, headers and the NCIP-only pool ----------------------------------------------------


def test_a_database_failure_while_signing_in_is_a_temporary_failure_not_a_500(
    reshare: tuple[ProtocolClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def dropped(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("the connection was closed")

    monkeypatch.setattr(clients, "authenticate_client", dropped)
    client, secret = reshare
    response = post(lookup(CURRENT), basic(client.login, secret))
    assert response.status_code == 200
    assert _problem(response) == "Temporary Processing Failure"


def test_every_answer_forbids_loading_running_and_framing_anything(reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    for response in (post(lookup(CURRENT), basic(client.login, secret)), post(lookup(CURRENT))):
        assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


_POOL_PROBE = """
import io, sys
from patronage.ncip.wsgi import application

def call(method, path):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
               "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1"}
    seen = {}
    def start(status, headers):
        seen["status"] = status.split()[0]
        seen["headers"] = dict(headers)
    b"".join(application(environ, start))
    return seen

ncip = call("GET", "/ncip/")
print(ncip["status"], call("GET", "/healthz")["status"], call("GET", "/staff/")["status"],
      call("GET", "/portal/")["status"], ncip["headers"].get("X-Content-Type-Options"),
      ncip["headers"].get("X-Frame-Options"), "Set-Cookie" in ncip["headers"])
"""


def test_the_ncip_pool_serves_the_responder_and_nothing_else(tmp_path: Path) -> None:
    env = {**os.environ, "PATRONAGE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "patronage.settings"}
    env.pop("DATABASE_URL", None)  # these answers read no database
    probe = [sys.executable, "-c", _POOL_PROBE]
    done = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603 - our own script
    assert done.returncode == 0, done.stderr[-2000:]
    # /ncip/ answers (405 to a GET, as in the full site), the health check too; pages are not there at all.
    assert done.stdout.split() == ["405", "200", "404", "404", "nosniff", "DENY", "False"]


def _as_elementtree_writes_it(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


@given(texts=st.lists(st.one_of(st.none(), st.text(max_size=12)), min_size=3, max_size=3), scheme=st.text(max_size=12))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_answers_are_written_byte_for_byte_as_elementtree_writes_them(texts: list[str | None], scheme: str) -> None:
    root = messages.message()
    response = messages.sub(root, "LookupUserResponse")
    messages.sub(response, "ProblemType", texts[0], scheme=scheme)
    node = messages.sub(response, "UserId")
    messages.sub(node, "UserIdentifierValue", texts[1])
    messages.sub(node, "AgencyId", texts[2])
    messages.sub(response, "Empty")
    assert messages.serialise(root) == _as_elementtree_writes_it(root)


def test_a_tree_with_a_foreign_element_is_still_written_by_elementtree() -> None:
    root = messages.message()
    ET.SubElement(root, "{urn:other}Thing").text = "x & y"
    assert messages.serialise(root) == _as_elementtree_writes_it(root)


_POOL_OPTIONS_PROBE = """
from django.db import connections
import patronage.ncip.wsgi
options = connections.settings["default"].get("OPTIONS", {})
print(options.get("server_side_binding"), options.get("prepare_threshold"))
"""


@pytest.mark.parametrize(("setting", "expected"), [(None, "True 2"), ("0", "None None"), ("off", "None None")])
def test_the_ncip_pool_prepares_its_statements_unless_told_not_to(
    tmp_path: Path, setting: str | None, expected: str
) -> None:
    env = {**os.environ, "PATRONAGE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "patronage.settings"}
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:9/unused"  # read as settings only: nothing connects
    env.pop("PATRONAGE_DB_PREPARED_STATEMENTS", None)
    if setting is not None:
        env["PATRONAGE_DB_PREPARED_STATEMENTS"] = setting
    probe = [sys.executable, "-c", _POOL_OPTIONS_PROBE]
    done = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603 - our own script
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == expected.split()
