"""A patron's portal password and the e-mailed links that set or reset it."""

from __future__ import annotations

from django.db import models

from patronage.patrons.models import Patron


class PatronCredential(models.Model):
    """The patron's portal password, as a Django password hash (Argon2 by default). One per patron."""

    patron = models.OneToOneField(Patron, on_delete=models.CASCADE, related_name="credential")
    password = models.CharField(max_length=256, help_text="A hash in Django's format; never the password itself.")
    set_at = models.DateTimeField()
    must_change = models.BooleanField(
        default=False, help_text="The patron is asked to choose a new password (e.g. after an imported one)."
    )

    def __str__(self) -> str:
        return f"Credential of patron {self.patron_id}"


class PasswordLink(models.Model):
    """A single-use, expiring link that lets a patron set a password.

    The token in the link is never stored: ``digest`` (SHA-256 of the token) finds the row, and the
    token itself is an HMAC of ``salt`` under the installation's secret key, so the e-mail task can
    rebuild it from the row without the token ever sitting in the task queue or the database.
    """

    class Purpose(models.TextChoices):
        SET = "set", "Set a first password"
        RESET = "reset", "Reset a forgotten password"

    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="password_links")
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    salt = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patron", "created_at"], name="password_link_patron_created")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} link for patron {self.patron_id}"


class InstitutionSignIn(models.Model):
    """A library's setting: its institution's LDAP directory checks the passwords of some or all patrons.

    For those patrons no local password is kept: the portal binds to the directory as the entry found by
    the identifier, and that entry's institution-id attribute must equal the patron's Person-ID.
    """

    library = models.OneToOneField("libraries.Library", on_delete=models.CASCADE, related_name="institution_sign_in")
    enabled = models.BooleanField(default=False)
    server_uris = models.TextField(
        help_text="One or more ldap:// or ldaps:// addresses, one per line; tried in order.", blank=True
    )
    start_tls = models.BooleanField(default=False, help_text="Upgrade an ldap:// connection with StartTLS.")
    bind_dn = models.CharField(max_length=500, blank=True, help_text="The account that searches the directory.")
    # Kept as given: the directory needs the password itself. PATRONAGE_LDAP_BIND_PASSWORD overrides it.
    bind_password = models.CharField(max_length=500, blank=True)
    search_base = models.CharField(max_length=500, blank=True)
    id_attribute = models.CharField(
        max_length=100, default="employeeNumber", help_text="The attribute holding the institution id."
    )
    login_attribute = models.CharField(
        max_length=100, default="uid", help_text="The attribute the patron's sign-in name is looked up in."
    )
    extra_filter = models.CharField(max_length=500, blank=True, help_text="An LDAP filter every entry must match too.")
    timeout_seconds = models.PositiveSmallIntegerField(default=5)
    all_patron_types = models.BooleanField(default=True)
    patron_types = models.ManyToManyField("patrons.PatronType", blank=True, related_name="+")
    service_name = models.CharField(
        max_length=200, blank=True, help_text="What patrons call the account, e.g. 'your university account'."
    )
    password_url = models.URLField(blank=True, help_text="Where patrons change or reset that password.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Institution sign-in of library {self.library_id}"
