"""Institution sign-in against a real OpenLDAP server (the ``slapd`` fixture of slapd.py).

The directory holds ada (E-1001), grace (E-1002), a person whose login name is "E-1003" but whose
institution id is E-9999, and one without an institution id.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from patronage.core.errors import ValidationFailed
from patronage.core.models import AuditEvent
from patronage.credentials import services
from patronage.credentials.models import InstitutionSignIn, PasswordLink, PatronCredential
from patronage.libraries.models import Library
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_library, make_patron, make_patron_type

from .slapd import PEOPLE_BASE, SEARCH_DN, SEARCH_PASSWORD, Directory, free_port

pytestmark = pytest.mark.django_db

ADA_PASSWORD = "analytical-engine-1843"
GRACE_PASSWORD = "cobol-compiler-1959"
MALLORY_PASSWORD = "mallory-password-77"
LOCAL_PASSWORD = "plum-orchard-41-lantern"
ADDRESS = "198.51.100.7"
NEUTRAL = "The card number or password is not right. Check both and try again."


def _settings(uri: str, **more: Any) -> dict[str, Any]:
    return {
        "enabled": True, "server_uris": uri, "bind_dn": SEARCH_DN, "bind_password": SEARCH_PASSWORD,
        "search_base": PEOPLE_BASE, "id_attribute": "employeeNumber", "login_attribute": "uid",
        "timeout_seconds": "2", "service_name": "your Example University account",
        "password_url": "https://id.example.edu/password", **more,
    }  # fmt: skip


@pytest.fixture
def library() -> Library:
    return make_library("uni", name="University Library")


@pytest.fixture
def ada(library: Library) -> Patron:
    """A patron with a local password from before the institution took over."""
    patron = make_patron(library, person_id="E-1001", barcode="2100000001", first_name="Ada", last_name="King")
    services.set_password(patron, LOCAL_PASSWORD, actor=SYSTEM)
    return patron


@pytest.fixture
def institution(slapd: Directory, library: Library, ada: Patron) -> InstitutionSignIn:
    return services.save_institution_sign_in(actor=SYSTEM, library=library, data=_settings(slapd.uri))


def _fails(library: Library, identifier: str, password: str) -> str:
    with pytest.raises(services.SignInFailed) as caught:
        services.authenticate(library, identifier, password, ADDRESS)
    return caught.value.message


def _point_at(library: Library, uri: str, timeout: str = "2") -> None:
    services.save_institution_sign_in(
        actor=SYSTEM, library=library, data={"server_uris": uri, "timeout_seconds": timeout}
    )


def test_the_directory_password_signs_in_by_login_name_person_id_or_card(
    library: Library, ada: Patron, institution: InstitutionSignIn
) -> None:
    assert services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS) == ada
    assert services.authenticate(library, "E-1001", ADA_PASSWORD, ADDRESS) == ada
    assert services.authenticate(library, "2100000001", ADA_PASSWORD, ADDRESS) == ada
    event = AuditEvent.objects.filter(action="patron.portal_signed_in", patron_id=ada.pk).first()
    assert event is not None
    assert event.detail["through"] == "institution"


def test_turning_it_on_removes_the_local_password_which_no_longer_works(
    library: Library, ada: Patron, institution: InstitutionSignIn
) -> None:
    assert not PatronCredential.objects.filter(patron=ada).exists()
    assert _fails(library, "E-1001", LOCAL_PASSWORD) == NEUTRAL
    state = services.sign_in_state(ada)
    assert state.institution
    assert not state.has_password


def test_a_wrong_directory_password_counts_towards_the_lock_out(
    library: Library, ada: Patron, institution: InstitutionSignIn, settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    assert _fails(library, "ada", "not-her-password") == NEUTRAL
    assert _fails(library, "E-1001", "still-wrong") == NEUTRAL
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "ada", "third-guess", ADDRESS)
    assert services.sign_in_state(ada).locked
    # Locked: even the right password waits for the cool-off (or staff lifting the lock).
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS)
    services.clear_lock(actor=SYSTEM, patron=ada)
    assert services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS) == ada


def test_an_entry_whose_institution_id_is_not_the_person_id_is_refused(
    library: Library, institution: InstitutionSignIn, settings: Any
) -> None:
    # The directory person "E-1003" (institution id E-9999) has the right password for their own entry,
    # but the patron whose Person-ID is E-1003 is somebody else.
    settings.LOGIN_FAILURE_LIMIT = 2
    victim = make_patron(library, person_id="E-1003")
    assert _fails(library, "E-1003", MALLORY_PASSWORD) == NEUTRAL
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "E-1003", MALLORY_PASSWORD, ADDRESS)
    assert services.sign_in_state(victim).locked
    # An entry without any institution id opens nothing either.
    assert _fails(library, "nobadge", "no-institution-id-1") == NEUTRAL


def test_unknown_people_and_directory_people_without_a_patron_get_the_neutral_message(
    library: Library, institution: InstitutionSignIn
) -> None:
    assert _fails(library, "nobody", "whatever-password") == NEUTRAL
    # grace is in the directory but has no patron record at this library.
    assert _fails(library, "grace", GRACE_PASSWORD) == NEUTRAL
    assert _fails(library, "ada", "") == NEUTRAL


@pytest.mark.parametrize("identifier", ["*", "ad*", "ada)(uid=*", "*)(|(uid=*", "ada\\2a", "(uid=ada)"])
def test_filter_characters_in_the_identifier_match_literally(
    library: Library, institution: InstitutionSignIn, identifier: str
) -> None:
    # Each would find ada (or everybody) if it reached the filter unescaped; with her password it would sign in.
    assert _fails(library, identifier, ADA_PASSWORD) == NEUTRAL


def test_a_directory_that_is_down_says_so_and_counts_nothing(
    library: Library, ada: Patron, institution: InstitutionSignIn, slapd: Directory, settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 2
    _point_at(library, f"ldap://127.0.0.1:{free_port()}")  # nothing listens there
    for _ in range(4):
        with pytest.raises(services.DirectoryUnavailable) as caught:
            services.authenticate(library, "ada", "any-password", ADDRESS)
        assert caught.value.message.startswith("The institution's sign-in service is not answering; try again later.")
    assert not services.sign_in_state(ada).locked
    # A second address in the list is tried when the first does not answer.
    _point_at(library, f"ldap://127.0.0.1:{free_port()}\n{slapd.uri}")
    assert services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS) == ada


def test_a_directory_that_never_answers_times_out_with_the_same_message(
    library: Library, ada: Patron, institution: InstitutionSignIn, silent_server: str
) -> None:
    _point_at(library, silent_server, timeout="1")
    with pytest.raises(services.DirectoryUnavailable):
        services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS)
    assert not services.sign_in_state(ada).locked


def test_a_refused_search_account_is_the_library_s_problem_not_the_patron_s(
    library: Library, ada: Patron, institution: InstitutionSignIn
) -> None:
    services.save_institution_sign_in(actor=SYSTEM, library=library, data={"bind_password": "stale-password"})
    with pytest.raises(services.DirectoryUnavailable):
        services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS)
    assert not services.sign_in_state(ada).locked


def test_the_bind_password_can_come_from_the_environment(
    library: Library, ada: Patron, institution: InstitutionSignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.save_institution_sign_in(actor=SYSTEM, library=library, data={"bind_password": "not-the-real-one"})
    monkeypatch.setenv("PATRONAGE_LDAP_BIND_PASSWORD_UNI", SEARCH_PASSWORD)
    assert services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS) == ada


def test_no_local_password_is_settable_for_an_institution_patron(
    library: Library, ada: Patron, institution: InstitutionSignIn, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    with pytest.raises(services.InstitutionManagesPassword) as caught:
        services.set_password(ada, "a-brand-new-password-9", actor=SYSTEM)
    assert "https://id.example.edu/password" in caught.value.message
    with pytest.raises(services.InstitutionManagesPassword):
        services.send_link(actor=SYSTEM, patron=ada, purpose=PasswordLink.Purpose.SET, base_url="http://x/")
    services.request_reset(library, "E-1001", base_url="http://x/", address=ADDRESS)
    assert mail.outbox == []
    assert not PatronCredential.objects.filter(patron=ada).exists()


def test_only_the_chosen_patron_types_sign_in_through_the_institution(slapd: Directory, library: Library) -> None:
    students = make_patron_type(library, "student")
    community = make_patron_type(library, "community")
    student = make_patron(library, person_id="E-1001", patron_type=students.pk)
    neighbour = make_patron(library, person_id="C-1", patron_type=community.pk)
    services.set_password(neighbour, LOCAL_PASSWORD, actor=SYSTEM)
    services.save_institution_sign_in(
        actor=SYSTEM, library=library,
        data=_settings(slapd.uri, all_patron_types=False, patron_types=[str(students.pk)]),
    )  # fmt: skip
    assert services.authenticate(library, "ada", ADA_PASSWORD, ADDRESS) == student
    assert services.authenticate(library, "C-1", LOCAL_PASSWORD, ADDRESS) == neighbour
    assert PatronCredential.objects.filter(patron=neighbour).exists()


def test_the_setting_is_checked_field_by_field_and_the_password_is_kept_when_left_empty(library: Library) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.save_institution_sign_in(
            actor=SYSTEM, library=library,
            data={
                "enabled": True, "server_uris": "http://ldap.example.edu", "search_base": "", "id_attribute": "a b",
                "extra_filter": "(objectClass=person", "timeout_seconds": "0", "all_patron_types": False,
                "password_url": "javascript:alert(1)",
            },
        )  # fmt: skip
    assert set(caught.value.errors) == {
        "server_uris", "search_base", "id_attribute", "extra_filter", "timeout_seconds", "patron_types", "password_url",
    }  # fmt: skip
    assert not InstitutionSignIn.objects.filter(library=library).exists()
    saved = services.save_institution_sign_in(actor=SYSTEM, library=library, data=_settings("ldaps://ldap.example.edu"))
    again = services.save_institution_sign_in(
        actor=SYSTEM, library=library, data={**_settings("ldaps://ldap.example.edu"), "bind_password": ""}
    )
    assert again.bind_password == saved.bind_password == SEARCH_PASSWORD
    event = AuditEvent.objects.filter(action="library.institution_sign_in_saved").first()
    assert event is not None
    assert SEARCH_PASSWORD not in str(event.detail)
    with pytest.raises(ValidationFailed) as caught:
        services.save_institution_sign_in(actor=SYSTEM, library=library, data={"start_tls": True})
    assert "start_tls" in caught.value.errors


def test_the_portal_says_when_the_institution_is_not_answering(
    library: Library, ada: Patron, institution: InstitutionSignIn
) -> None:
    client = Client()
    url = reverse("portal:sign-in", kwargs={"library": library.code})
    ok = client.post(url, {"identifier": "ada", "password": ADA_PASSWORD})
    assert ok.status_code == 302
    dashboard = client.get(reverse("portal:dashboard", kwargs={"library": library.code}), follow=True)
    assert dashboard.status_code == 200
    assert all(url != "/portal/uni/sign-in/" for url, _ in dashboard.redirect_chain)  # the session holds
    _point_at(library, f"ldap://127.0.0.1:{free_port()}")
    down = Client().post(url, {"identifier": "ada", "password": ADA_PASSWORD})
    assert down.status_code == 503
    assert "sign-in service is not answering; try again later" in down.content.decode()


def test_the_forgot_password_page_says_where_institution_patrons_change_their_password(
    library: Library, institution: InstitutionSignIn
) -> None:
    page = Client().get(reverse("portal:forgot-password", kwargs={"library": library.code})).content.decode()
    assert "your institution manages this password" in page
    assert "https://id.example.edu/password" in page
    # A library without institution sign-in says nothing of it.
    other = make_library("plain")
    assert "institution manages" not in Client().get(f"/portal/{other.code}/forgot-password/").content.decode()
