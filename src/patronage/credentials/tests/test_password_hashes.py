"""Password hashes: Argon2id at the configured cost, and older hashes re-made at the next sign-in."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, identify_hasher, make_password
from django.core.exceptions import ImproperlyConfigured

from patronage import settings as project_settings
from patronage.core import clock
from patronage.core.passwords import Argon2idHasher
from patronage.credentials import services
from patronage.credentials.models import PatronCredential
from tests.factories import make_library, make_patron

SECRET = "quince-harbour-73-kettle"


def _parameters(encoded: str) -> tuple[int, int, int]:
    decoded = identify_hasher(encoded).decode(encoded)
    return decoded["memory_cost"], decoded["time_cost"], decoded["parallelism"]


def test_new_hashes_are_argon2id_at_the_owasp_cost_by_default() -> None:
    encoded = make_password(SECRET)
    assert encoded.startswith("argon2$argon2id$")
    assert _parameters(encoded) == (19456, 2, 1)
    assert check_password(SECRET, encoded)
    assert not check_password(SECRET + "x", encoded)


def test_the_cost_follows_the_setting(settings: pytest.FixtureRequest) -> None:
    settings.PATRONAGE_PASSWORD_ARGON2 = {"memory_kib": 47104, "time_cost": 1, "parallelism": 1}  # type: ignore[attr-defined]
    assert _parameters(make_password(SECRET)) == (47104, 1, 1)


@pytest.mark.django_db
def test_a_hash_made_at_another_cost_still_signs_in_and_is_remade_at_the_current_one() -> None:
    library = make_library("east", name="East Library")
    patron = make_patron(library, person_id="P-2002", barcode="2200000002")
    old = Argon2PasswordHasher().encode(SECRET, Argon2PasswordHasher().salt())  # Django's own cost
    assert _parameters(old) == (102400, 2, 8)
    assert Argon2idHasher().must_update(old)
    PatronCredential.objects.create(patron=patron, password=old, set_at=clock.now())

    assert services.authenticate(library, "P-2002", SECRET, "198.51.100.9") == patron

    stored = PatronCredential.objects.get(patron=patron).password
    assert _parameters(stored) == (19456, 2, 1)
    assert check_password(SECRET, stored)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"PATRONAGE_PASSWORD_MEMORY_KIB": "lots"}, "PATRONAGE_PASSWORD_MEMORY_KIB must be a whole number"),
        ({"PATRONAGE_PASSWORD_TIME_COST": "0"}, "PATRONAGE_PASSWORD_TIME_COST must be at least 1"),
        (
            {"PATRONAGE_PASSWORD_MEMORY_KIB": "16", "PATRONAGE_PASSWORD_PARALLELISM": "4"},
            "at least 8 KiB per lane",
        ),
    ],
)
def test_a_bad_setting_says_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        project_settings._argon2_parameters()
