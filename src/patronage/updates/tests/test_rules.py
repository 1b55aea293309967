"""The pure rules: option resolution level by level, postal-code form.

The free phone field (validation off) is the patrons' rule, tested in ``test_phones.py``."""

from __future__ import annotations

from patronage.updates import rules


def test_the_most_specific_level_that_sets_an_option_decides_it() -> None:
    resolved = rules.resolve(
        (
            rules.Level("branch East", {"address_change": "direct", "email_change": "", "confirmation_email": None}),
            rules.Level("library", {"email_change": "off", "confirmation_email": False}),
        ),
        phone_validation=True,
    )
    assert resolved.mode("address_change") == "direct"
    assert resolved.sources["address_change"] == "branch East"
    assert resolved.mode("email_change") == "off"
    assert resolved.sources["email_change"] == "library"
    assert resolved.flag("confirmation_email") is False
    assert resolved.mode("phone_change") == "request"
    assert resolved.sources["phone_change"] == "system default"


def test_postal_codes_compare_in_capitals_with_single_spaces() -> None:
    assert rules.normalise_postal_code("  sw1a   1aa ") == "SW1A 1AA"
