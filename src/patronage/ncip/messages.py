"""Reading NCIP 2.0 requests and writing NCIP 2.02 responses.

Reading is lenient, as real clients need (``shared/notes/protocols.md`` section 5): elements are found by
local name, in the NCIP namespace or in none; the ``version`` attribute may be qualified, unqualified or
missing; the InitiationHeader is optional. It is also safe: the body is size-capped by the view, and
``defusedxml`` refuses any DTD, entity declaration or external reference before anything is expanded or
fetched. Anything the reader cannot use becomes an ``NcipProblem``, never another exception.

Writing is strict: the schema's namespace (prefix ``ns0``, which ElementTree picks), a qualified ``version`` naming the v2_02
schema, and elements in schema order (the tests validate every response against ``ncip_v2_02.xsd``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET  # only for building our own output; requests go through defusedxml

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

NS = "http://www.niso.org/2008/ncip"
VERSION = "http://www.niso.org/schemas/ncip/v2_02/ncip_v2_02.xsd"
MAX_DEPTH = 64

# The standard problem types (NCIP version 1 schemes, as the XC toolkit names them), and their schemes.
_SCHEMES = "http://www.niso.org/ncip/v1_0/schemes/"
GENERAL = _SCHEMES + "processingerrortype/generalprocessingerror.scm"
MESSAGING = _SCHEMES + "messagingerrortype/messagingerrortype.scm"
LOOKUP_USER = _SCHEMES + "processingerrortype/lookupuserprocessingerror.scm"
CHECK_OUT = _SCHEMES + "processingerrortype/checkoutitemprocessingerror.scm"
CHECK_IN = _SCHEMES + "processingerrortype/checkinitemprocessingerror.scm"
ACCEPT = _SCHEMES + "processingerrortype/acceptitemprocessingerror.scm"


class NcipProblem(Exception):
    """One NCIP Problem: answered inside the service's response, or at the top level (``top_level``)."""

    def __init__(
        self,
        problem_type: str,
        detail: str = "",
        *,
        element: str = "",
        value: str = "",
        scheme: str = GENERAL,
        top_level: bool = False,
    ) -> None:
        super().__init__(f"{problem_type}: {detail}")
        self.problem_type = problem_type
        self.detail = detail
        self.element = element
        self.value = value
        self.scheme = scheme
        self.top_level = top_level


def syntax_problem(detail: str) -> NcipProblem:
    return NcipProblem("Invalid Message Syntax Error", detail, scheme=MESSAGING, top_level=True)


def local(tag: object) -> str:
    """The local name of an element tag (``{ns}Name`` or ``Name``); comments and PIs have none."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


@dataclass(frozen=True)
class Header:
    from_agency: str = ""
    to_agency: str = ""
    from_system: str = ""
    to_system: str = ""
    agency_authentication: str = ""


@dataclass(frozen=True)
class Request:
    """A parsed request: the service element's name, its element, and the InitiationHeader if any."""

    service: str
    element: ET.Element
    header: Header | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def children(self, name: str, parent: ET.Element | None = None) -> list[ET.Element]:
        return [c for c in (self.element if parent is None else parent) if local(c.tag) == name]

    def first(self, *path: str) -> ET.Element | None:
        """The first element along ``path`` of local names, from the service element."""
        node: ET.Element | None = self.element
        for name in path:
            node = next((c for c in node if local(c.tag) == name), None) if node is not None else None
        return node

    def text(self, *path: str) -> str:
        node = self.first(*path)
        return (node.text or "").strip() if node is not None else ""

    def texts(self, name: str) -> list[str]:
        return [(c.text or "").strip() for c in self.children(name)]


def _check_depth(root: ET.Element) -> None:
    stack: list[tuple[ET.Element, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise syntax_problem(f"The message nests elements more than {MAX_DEPTH} deep.")
        stack.extend((child, depth + 1) for child in node)


def _text_of(node: ET.Element | None, *path: str) -> str:
    for name in path:
        node = next((c for c in node if local(c.tag) == name), None) if node is not None else None
    return (node.text or "").strip() if node is not None else ""


def parse(body: bytes) -> Request:
    """The request in ``body``, or ``NcipProblem`` (Invalid Message Syntax Error / Unsupported Service)."""
    if not body.strip():
        raise syntax_problem("The request body is empty; POST one NCIPMessage document.")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise syntax_problem("DTDs, entity declarations and external references are not accepted.") from None
    except ET.ParseError as exc:
        raise syntax_problem(f"The body is not well-formed XML ({str(exc)[:120]}).") from None
    except (ValueError, LookupError, UnicodeError, RecursionError):
        raise syntax_problem("The body could not be read as XML in a known encoding.") from None
    _check_depth(root)
    if local(root.tag) != "NCIPMessage":
        raise syntax_problem(f"The root element must be NCIPMessage, not {local(root.tag)[:60]!r}.")
    namespace = _namespace(root.tag)
    if namespace not in ("", NS):
        raise syntax_problem(f"NCIP messages are in the namespace {NS}, not {namespace[:120]!r}.")
    services = [c for c in root if isinstance(c.tag, str)]
    if len(services) != 1:
        raise syntax_problem("An NCIPMessage holds exactly one service element.")
    element = services[0]
    if _namespace(element.tag) not in ("", NS):
        raise syntax_problem(f"NCIP messages are in the namespace {NS}.")
    header_node = next((c for c in element if local(c.tag) == "InitiationHeader"), None)
    header = None
    if header_node is not None:
        header = Header(
            from_agency=_text_of(header_node, "FromAgencyId", "AgencyId")[:100],
            to_agency=_text_of(header_node, "ToAgencyId", "AgencyId")[:100],
            from_system=_text_of(header_node, "FromSystemId")[:100],
            to_system=_text_of(header_node, "ToSystemId")[:100],
            agency_authentication=_text_of(header_node, "FromAgencyAuthentication")[:200],
        )
    return Request(service=local(element.tag), element=element, header=header)


# --- writing -------------------------------------------------------------------------------------


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def sub(parent: ET.Element, name: str, text: str | None = None, *, scheme: str = "") -> ET.Element:
    node = ET.SubElement(parent, q(name))
    if text is not None:
        node.text = text
    if scheme:
        node.set(q("Scheme"), scheme)
    return node


def message() -> ET.Element:
    root = ET.Element(q("NCIPMessage"))
    root.set(q("version"), VERSION)
    return root


def response_header(parent: ET.Element, request_header: Header | None, our_agency: str) -> None:
    """The ResponseHeader, when the request had an InitiationHeader: its agencies swapped."""
    if request_header is None:
        return
    header = sub(parent, "ResponseHeader")
    if request_header.to_system:
        sub(header, "FromSystemId", request_header.to_system)
    sub(sub(header, "FromAgencyId"), "AgencyId", request_header.to_agency or our_agency)
    if request_header.from_system:
        sub(header, "ToSystemId", request_header.from_system)
    sub(sub(header, "ToAgencyId"), "AgencyId", request_header.from_agency or our_agency)


def problem(parent: ET.Element, p: NcipProblem) -> None:
    node = sub(parent, "Problem")
    sub(node, "ProblemType", p.problem_type, scheme=p.scheme)
    if p.detail:
        sub(node, "ProblemDetail", p.detail[:1000])
    if p.element:
        sub(node, "ProblemElement", p.element)
    if p.value:
        sub(node, "ProblemValue", p.value[:200])


def identifier(parent: ET.Element, kind: str, agency: str, value: str, id_type: str = "") -> None:
    """``UserId``, ``ItemId`` or ``RequestId``: AgencyId, type, value (in schema order)."""
    node = sub(parent, f"{kind}Id")
    if agency:
        sub(node, "AgencyId", agency)
    if id_type:
        sub(node, f"{kind}IdentifierType", id_type)
    sub(node, f"{kind}IdentifierValue", value)


def date_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_OURS = f"{{{NS}}}"
_PREFIX = "ns0:"  # the prefix ElementTree gives the first namespace it meets, and the one every answer has used


def _escape_text(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _escape_attribute(text: str) -> str:
    text = _escape_text(text)
    for char, reference in (('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;")):
        if char in text:
            text = text.replace(char, reference)
    return text


def _name(tag: object) -> str:
    if not isinstance(tag, str) or not tag.startswith(_OURS):
        raise ValueError(tag)  # not one of ours: ElementTree writes it
    return _PREFIX + tag[len(_OURS) :]


def _write(node: ET.Element, out: list[str], declare: str = "") -> None:
    name = _name(node.tag)
    out.append(f"<{name}{declare}")
    for key, value in node.items():
        out.append(f' {_name(key)}="{_escape_attribute(value)}"')
    if node.text or len(node):
        out.append(">")
        if node.text:
            out.append(_escape_text(node.text))
        for child in node:
            _write(child, out)
        out.append(f"</{name}>")
    else:
        out.append(" />")
    if node.tail:
        out.append(_escape_text(node.tail))


def serialise(root: ET.Element) -> bytes:
    """The document as ElementTree writes it (the same bytes), by a writer that knows our trees: every element
    and attribute in the NCIP namespace, declared once on the root. ElementTree's general writer looks up every
    name's namespace twice and was an eighth of a LookupUser's CPU; a tree it does not know goes to it."""
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    try:
        _write(root, out, f' xmlns:{_PREFIX[:-1]}="{_escape_attribute(NS)}"')
    except ValueError:
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return "".join(out).encode("utf-8", "xmlcharrefreplace")


def top_level_problem(p: NcipProblem) -> bytes:
    root = message()
    problem(root, p)
    return serialise(root)
