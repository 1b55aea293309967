"""External systems that ask about patrons: resource-sharing systems, self-check machines, add-ons."""

from __future__ import annotations

from django.db import models

from patronage.libraries.models import Branch, Library


class Protocol(models.TextChoices):
    REST = "rest", "REST (interlibrary-loan validation)"
    NCIP = "ncip", "NCIP 2.0"
    SIP2 = "sip2", "SIP2"


class Charset(models.TextChoices):
    CP850 = "cp850", "Code page 850 (the SIP2 default)"
    UTF8 = "utf-8", "UTF-8"
    LATIN1 = "latin-1", "ISO 8859-1"
    ASCII = "ascii", "ASCII"


class Sip2ExtensionField(models.TextChoices):
    """Fields outside the SIP2 standard that e-book vendors (Palace and others) read in Patron Information."""

    PA = "PA", "PA: when the card expires (YYYYMMDD)"
    PC = "PC", "PC: the patron type's code"
    XI = "XI", "XI: the patron's record number in Patronage (not the card number)"


def all_sip2_extension_fields() -> list[str]:
    """The default of ``ProtocolClient.sip2_extension_fields``: every extension field, as before the setting."""
    return list(Sip2ExtensionField.values)


class ProtocolClient(models.Model):
    """One external system, with its own login and secret, allowed to ask one library by some protocols.

    The secret is stored as a SHA-256 digest: it is a long random text made by Patronage and shown once, so
    a slow password hash buys nothing and would cost every SIP2 login and REST request.
    """

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="protocol_clients")
    name = models.CharField(max_length=100)
    login = models.CharField(max_length=64, unique=True, help_text="What the system sends as its user name.")
    secret_digest = models.CharField(max_length=64, db_index=True)
    protocols = models.JSONField(default=list, help_text="Some of rest, ncip, sip2.")
    allowed_networks = models.JSONField(default=list, help_text="Addresses or networks (CIDR) it may call from.")
    enabled = models.BooleanField(default=True)
    charset = models.CharField(max_length=16, choices=Charset.choices, default=Charset.CP850)
    # SIP2 only. On: a patron is acted for, and their details given, only with their right PIN (AD). Off: the
    # client vouches for its patrons (an e-book vendor that signs them in itself), and no PIN or an empty one
    # is accepted; a wrong PIN is refused all the same.
    patron_pin_required = models.BooleanField(
        "Patrons must give their PIN (SIP2)", default=True,
        help_text="Without the right PIN a SIP2 answer names nobody and nothing is checked out, renewed or paid.",
    )  # fmt: skip
    sip2_extension_fields = models.JSONField(
        "Extra patron fields (SIP2)", default=all_sip2_extension_fields,
        help_text="Which of PA, PC and XI the Patron Information answer (64) carries.",
    )  # fmt: skip
    created_at = models.DateTimeField()
    secret_set_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    # NCIP AcceptItem: interlibrary-loan items arrive at this checkout center (empty: AcceptItem is refused).
    ill_center = models.ForeignKey(
        Branch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The checkout center where items borrowed through interlibrary loan (NCIP AcceptItem) are held.",
    )  # fmt: skip
    ill_loan_days = models.PositiveSmallIntegerField(
        default=28, help_text="How long an interlibrary-loan item is lent, unless the request asks for a date due."
    )

    class Meta:
        ordering = ["library", "name"]
        constraints = [models.UniqueConstraint(fields=["library", "name"], name="protocol_client_name_per_library")]

    def __str__(self) -> str:
        return self.name


class IllItem(models.Model):
    """An item borrowed from another library through interlibrary loan, as a resource-sharing system reports it.

    NCIP AcceptItem makes one (a temporary resource and a reservation holding it for the patron), CheckOutItem
    hands it out, CheckInItem takes it back and retires the resource. Keyed on the requester's agency and
    request id, so a repeated AcceptItem answers the first result and changes nothing.
    """

    class State(models.TextChoices):
        ACCEPTED = "accepted", "Held for the patron"
        CHECKED_OUT = "checked_out", "Checked out"
        CHECKED_IN = "checked_in", "Checked in"
        CANCELLED = "cancelled", "Cancelled"

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(ProtocolClient, null=True, on_delete=models.SET_NULL, related_name="ill_items")
    request_agency = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=100)
    resource = models.ForeignKey("resources.Resource", on_delete=models.PROTECT, related_name="+")
    reservation = models.ForeignKey("reservations.Reservation", on_delete=models.PROTECT, related_name="+")
    checkout = models.ForeignKey(
        "circulation.Checkout", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACCEPTED)
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["library", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["library", "request_agency", "request_id"], name="ill_item_request_per_library"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_agency}/{self.request_id}"
