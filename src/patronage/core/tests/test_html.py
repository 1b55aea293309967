from __future__ import annotations

import pytest

from patronage.core.errors import FieldError
from patronage.core.html import clean_html, sanitize


def test_scripts_handlers_and_styles_are_removed_and_plain_markup_kept() -> None:
    cleaned = clean_html(
        '<h2 onclick="steal()">Opening hours</h2><script>alert(1)</script><p style="color:red">Mon <b>9</b>'
        '<a href="javascript:alert(1)">x</a> <a href="https://example.org/">site</a></p>',
        field="portal_message",
    )
    assert "<h2>Opening hours</h2>" in cleaned
    for removed in ("<script", "alert(1)", "onclick", "style", "javascript"):
        assert removed not in cleaned
    assert '<a href="https://example.org/" rel="noopener noreferrer">site</a>' in cleaned


def test_an_image_without_a_text_alternative_is_refused() -> None:
    for markup in ('<img src="/static/map.png">', '<img src="/static/map.png" alt="  ">'):
        with pytest.raises(FieldError) as caught:
            clean_html(markup, field="portal_message")
        assert caught.value.field == "portal_message"
        assert "text alternative" in caught.value.message


def test_an_image_with_alt_from_this_site_or_embedded_is_kept() -> None:
    assert 'alt="Map of the lab"' in clean_html('<img src="/static/map.png" alt="Map of the lab">', field="m")
    assert "data:image/png" in clean_html('<img src="data:image/png;base64,iVBORw0KGgo=" alt="Dot">', field="m")


def test_images_from_other_sites_and_data_links_are_refused() -> None:
    with pytest.raises(FieldError, match="not on this site"):
        clean_html('<img src="https://tracker.example/pixel.gif" alt="x">', field="m")
    with pytest.raises(FieldError, match="not on this site"):
        clean_html('<img src="//tracker.example/pixel.gif" alt="x">', field="m")
    with pytest.raises(FieldError, match="data: address"):
        clean_html('<a href="data:text/html,hi">x</a>', field="m")


def test_length_is_capped() -> None:
    with pytest.raises(FieldError, match="at most 20,000"):
        clean_html("a" * 20_001, field="m")


def test_sanitize_is_what_pages_apply_when_showing() -> None:
    assert sanitize('<p>Hi<iframe src="https://x"></iframe></p>') == "<p>Hi</p>"
