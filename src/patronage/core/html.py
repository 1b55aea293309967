"""Staff-written HTML shown to patrons (a checkout center's portal message): cleaned on save, again on show.

``nh3`` (the Rust ``ammonia`` sanitiser) keeps a short list of tags and attributes and drops everything
else: scripts, styles, event handlers, ``javascript:`` addresses. On top of that, ``clean_html`` refuses what
would fail the patrons who use screen readers or what the pages' Content-Security-Policy would block: an
image without a text alternative, an image from another site.
"""

from __future__ import annotations

from html.parser import HTMLParser

import nh3

from .errors import FieldError

MAX_LENGTH = 20_000
TAGS = {"p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "a", "h2", "h3", "h4", "blockquote", "img"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}
SCHEMES = {"http", "https", "mailto", "data"}


def sanitize(text: str) -> str:
    """The allowed subset of ``text``; safe to put into a page as it is."""
    return nh3.clean(text, tags=TAGS, attributes=ATTRIBUTES, url_schemes=SCHEMES, link_rel="noopener noreferrer")


class _Checks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: (value or "").strip() for name, value in attrs}
        if tag == "img":
            src = values.get("src", "")
            if not values.get("alt"):
                self.problems.append(
                    f'The image {src[:60]!r} has no text alternative: add alt="…" saying what it shows, '
                    "so patrons using a screen reader get it too."
                )
            if not (src.startswith("/") and not src.startswith("//")) and not src.startswith("data:image/"):
                self.problems.append(
                    f"The image {src[:60]!r} is not on this site; the portal shows only images from this site "
                    "(an address starting with /) or embedded ones (data:image/…)."
                )
        if tag == "a" and values.get("href", "").lower().startswith("data:"):
            self.problems.append("A link may not point to a data: address; link to a web page or an e-mail address.")


def clean_html(value: object, *, field: str) -> str:
    """Check and clean staff-written HTML; raise ``FieldError`` on ``field`` with what to fix."""
    text = str(value or "").strip()
    if len(text) > MAX_LENGTH:
        raise FieldError(field, f"Keep this to at most {MAX_LENGTH:,} characters (it has {len(text):,}).")
    cleaned = sanitize(text)
    checks = _Checks()
    checks.feed(cleaned)
    checks.close()
    if checks.problems:
        raise FieldError(field, " ".join(dict.fromkeys(checks.problems)))
    return cleaned
