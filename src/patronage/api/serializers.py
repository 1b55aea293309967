"""Shapes of the API's requests and responses.

Response serializers turn models into JSON. Request serializers describe the body for the schema
and check only its shape (types); every rule about the values lives in the domain services, so the
API, the staff pages and the importer refuse the same things with the same messages.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from patronage.blocks.models import Block
from patronage.fines.models import Fee, Payment, PaymentAllocation, Waiver
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Address, Barcode, Patron, PatronType
from patronage.reservations.models import CenterPolicy, Reservation, ReservationEvent, ReservationLine
from patronage.resources.models import Authorization, Resource, ResourceType
from patronage.standing.rules import Action, Condition

# Labelled as drf-spectacular labels an Enum, so the schema names this choice set ConditionEnum once.
CONDITIONS = [(c.value, c.name) for c in Condition]


class RefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk")
    code = serializers.CharField()
    name = serializers.CharField()


class BranchSerializer(serializers.ModelSerializer[Branch]):
    class Meta:
        model = Branch
        fields = ["id", "code", "name"]


class PatronTypeSerializer(serializers.ModelSerializer[PatronType]):
    # Declared, so the schema does not take the database backend's integer range.
    expiry_months = serializers.IntegerField(min_value=0)
    loan_limit = serializers.IntegerField(min_value=0, allow_null=True)

    class Meta:
        model = PatronType
        fields = ["id", "code", "name", "fine_limit", "expiry_months", "may_self_update", "may_use_ill", "loan_limit"]


class PatronTypeWriteSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    fine_limit = serializers.CharField(required=False, help_text="A balance strictly above this blocks borrowing.")
    expiry_months = serializers.IntegerField(required=False, min_value=1)
    may_self_update = serializers.BooleanField(required=False)
    may_use_ill = serializers.BooleanField(required=False)
    loan_limit = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class PatronTypeCreateSerializer(PatronTypeWriteSerializer):
    library = serializers.CharField(help_text="Id or code of a library you configure.")


class LibrarySerializer(serializers.ModelSerializer[Library]):
    permissions = serializers.SerializerMethodField()
    institution_sign_in = serializers.SerializerMethodField()
    branches = BranchSerializer(many=True, read_only=True)
    patron_types = PatronTypeSerializer(many=True, read_only=True)

    class Meta:
        model = Library
        fields = ["id", "code", "name", "currency", "time_zone", "country", "permissions", "branches", "patron_types",
                  "lending_history_retention_days",
                  "institution_sign_in"]  # fmt: skip

    def get_permissions(self, library: Library) -> list[str]:
        held: dict[int, frozenset[Permission]] = self.context["permissions"]
        return sorted(p.value for p in held.get(library.pk, frozenset()))

    @extend_schema_field(
        {"type": "object", "nullable": True, "description": "Institution sign-in (LDAP) as /libraries/{library}/"
         "institution-sign-in/ gives it; only for those who configure the library, else null."}
    )  # fmt: skip
    def get_institution_sign_in(self, library: Library) -> dict[str, Any] | None:
        from .credentials import institution_sign_in_data  # that module imports this one

        held: dict[int, frozenset[Permission]] = self.context["permissions"]
        if Permission.CONFIGURE_LIBRARY not in held.get(library.pk, frozenset()):
            return None
        return institution_sign_in_data(library)


class BarcodeSerializer(serializers.ModelSerializer[Barcode]):
    class Meta:
        model = Barcode
        fields = ["number", "is_active", "issued_at", "replaced_at"]


class AddressSerializer(serializers.ModelSerializer[Address]):
    kind = serializers.ChoiceField(choices=Address.Kind.choices, default=Address.Kind.HOME)

    class Meta:
        model = Address
        fields = ["kind", "line1", "line2", "city", "region", "postal_code", "country"]
        extra_kwargs = {f: {"required": False, "allow_blank": True, "validators": []} for f in fields[1:]}


class PhonesSerializer(serializers.Serializer[Any]):
    """Phone numbers by kind; an empty value or null removes that kind."""

    mobile = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    home = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    work = serializers.CharField(required=False, allow_blank=True, allow_null=True)


def phones_of(patron: Patron) -> dict[str, str]:
    return {phone.kind: phone.number for phone in patron.phones.all()}


class PatronSummarySerializer(serializers.ModelSerializer[Patron]):
    """One row of a search result."""

    barcode = serializers.SerializerMethodField()
    patron_type = RefSerializer()
    library = serializers.IntegerField(source="library_id")

    class Meta:
        model = Patron
        fields = ["id", "library", "first_name", "last_name", "display_name", "barcode", "patron_type", "status",
                  "expires_on"]  # fmt: skip

    def get_barcode(self, patron: Patron) -> str | None:
        active = [b.number for b in patron.barcodes.all() if b.is_active]
        return active[0] if active else None


class ReasonSerializer(serializers.Serializer[Any]):
    code = serializers.ChoiceField(choices=CONDITIONS)
    staff_message = serializers.CharField()
    patron_message = serializers.CharField()
    remedy = serializers.CharField()
    details = serializers.DictField(child=serializers.CharField())


class DecisionSerializer(serializers.Serializer[Any]):
    allowed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.ChoiceField(choices=CONDITIONS))


class StandingSerializer(serializers.Serializer[Any]):
    clear = serializers.BooleanField()
    conditions = ReasonSerializer(many=True)
    decisions = serializers.DictField(
        child=DecisionSerializer(), help_text="One entry per action: " + ", ".join(Action)
    )


class PatronSerializer(serializers.ModelSerializer[Patron]):
    """A patron record with contacts, balance and standing."""

    library = RefSerializer()
    patron_type = RefSerializer()
    registered_branch = RefSerializer()
    barcode = serializers.SerializerMethodField()
    barcodes = BarcodeSerializer(many=True)
    phones = serializers.SerializerMethodField()
    addresses = AddressSerializer(many=True)
    balance = serializers.DecimalField(max_digits=12, decimal_places=2, source="api_balance")
    standing = StandingSerializer(source="api_standing")

    class Meta:
        model = Patron
        fields = [
            "id", "library", "first_name", "last_name", "display_name", "birth_date", "person_id", "status",
            "expires_on", "signature_on_file", "staff_notes", "primary_email", "alternate_email",
            "notification_method", "patron_type", "registered_branch", "barcode", "barcodes", "phones",
            "addresses", "balance", "standing", "created_at", "updated_at",
            "keep_lending_history",
            "opt_out_almost_overdue", "opt_out_record_expiration", "opt_out_inactive",
        ]  # fmt: skip

    def get_barcode(self, patron: Patron) -> str | None:
        active = [b.number for b in patron.barcodes.all() if b.is_active]
        return active[0] if active else None

    def get_phones(self, patron: Patron) -> dict[str, str]:
        return phones_of(patron)


class PatronWriteSerializer(serializers.Serializer[Any]):
    """The fields a client may send. Patron type and branch may be given by id or code."""

    first_name = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_blank=True)
    birth_date = serializers.CharField(required=False, allow_blank=True, allow_null=True, help_text="YYYY-MM-DD")
    person_id = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    status = serializers.ChoiceField(choices=Patron.Status.choices, required=False)
    expires_on = serializers.CharField(required=False, allow_blank=True, allow_null=True, help_text="YYYY-MM-DD")
    signature_on_file = serializers.BooleanField(required=False)
    keep_lending_history = serializers.BooleanField(
        required=False, help_text="Keep completed lending history beyond the library's retention period."
    )
    opt_out_almost_overdue = serializers.BooleanField(
        required=False, help_text="No reminders before items are due (if the library lets patrons opt out)."
    )
    opt_out_record_expiration = serializers.BooleanField(
        required=False, help_text="No reminders before the record expires (if the library lets patrons opt out)."
    )
    opt_out_inactive = serializers.BooleanField(
        required=False, help_text="No notices about an unused account (if the library lets patrons opt out)."
    )
    staff_notes = serializers.CharField(required=False, allow_blank=True)
    primary_email = serializers.CharField(required=False, allow_blank=True)
    alternate_email = serializers.CharField(required=False, allow_blank=True)
    notification_method = serializers.ChoiceField(choices=Patron.NotificationMethod.choices, required=False)
    patron_type = serializers.CharField(required=False, help_text="Id or code of a patron type of the library.")
    registered_branch = serializers.CharField(required=False, help_text="Id or code of a branch of the library.")
    phones = PhonesSerializer(required=False)
    addresses = AddressSerializer(many=True, required=False, help_text="Replaces every address of the patron.")


class PatronCreateSerializer(PatronWriteSerializer):
    library = serializers.CharField(help_text="Id or code of the library (one where you may edit patrons).")
    barcode = serializers.CharField(required=False, allow_blank=True)


class BarcodeIssueSerializer(serializers.Serializer[Any]):
    number = serializers.CharField(help_text="The new card number; the active one becomes history.")


class FeeSerializer(serializers.ModelSerializer[Fee]):
    paid = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    waived = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    outstanding = serializers.SerializerMethodField()

    class Meta:
        model = Fee
        fields = ["id", "kind", "amount", "description", "branch", "created_at", "paid", "waived", "outstanding"]

    def get_outstanding(self, fee: Any) -> str:
        return f"{fee.amount - getattr(fee, 'paid', 0) - getattr(fee, 'waived', 0):.2f}"


class AllocationSerializer(serializers.ModelSerializer[PaymentAllocation]):
    class Meta:
        model = PaymentAllocation
        fields = ["fee", "amount"]


class PaymentSerializer(serializers.ModelSerializer[Payment]):
    allocations = AllocationSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = ["id", "amount", "method", "idempotency_key", "note", "branch", "received_at", "allocations"]


class WaiverSerializer(serializers.ModelSerializer[Waiver]):
    class Meta:
        model = Waiver
        fields = ["id", "fee", "amount", "reason", "waived_at"]


class AccountSerializer(serializers.Serializer[Any]):
    balance = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    fine_limit = serializers.DecimalField(max_digits=12, decimal_places=2)
    fees = FeeSerializer(many=True)
    payments = PaymentSerializer(many=True)
    waivers = WaiverSerializer(many=True)


class FeeCreateSerializer(serializers.Serializer[Any]):
    amount = serializers.CharField(help_text="In the library's currency, e.g. 2.50.")
    kind = serializers.ChoiceField(choices=Fee.Kind.choices, required=False, default=Fee.Kind.OTHER)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    branch = serializers.CharField(required=False, allow_null=True, default=None, help_text="Branch id.")


class PaymentCreateSerializer(serializers.Serializer[Any]):
    amount = serializers.CharField(help_text="At most the balance.")
    method = serializers.ChoiceField(choices=Payment.Method.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    branch = serializers.CharField(required=False, allow_null=True, default=None, help_text="Branch id.")


class WaiverCreateSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField()
    amount = serializers.CharField(required=False, allow_null=True, default=None, help_text="Empty: all still owed.")


class BlockSerializer(serializers.ModelSerializer[Block]):
    class Meta:
        model = Block
        fields = ["id", "comment", "created_at", "created_by_label", "ends_at", "lifted_at", "lifted_by_label",
                  "lift_comment"]  # fmt: skip


class BlockCreateSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(help_text="Why; shown to staff.")
    ends_at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="Empty: until lifted.")


class UnblockSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(help_text="Why the block is lifted.")


class TokenInfoSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    prefix = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    token = TokenInfoSerializer(allow_null=True)
    libraries = LibrarySerializer(many=True)


class ExportSerializer(serializers.Serializer[Any]):
    format = serializers.CharField()
    version = serializers.IntegerField()
    generated_at = serializers.DateTimeField()
    library = serializers.DictField()
    patron = serializers.DictField()


# --- lending: catalog, center policies, availability, reservations ---------------------------------------


class ResourceTypeSerializer(serializers.ModelSerializer[ResourceType]):
    buffer_before_minutes = serializers.IntegerField(min_value=0)
    buffer_after_minutes = serializers.IntegerField(min_value=0)
    centers: serializers.PrimaryKeyRelatedField[Branch] = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = ResourceType
        fields = [
            "id", "library", "parent", "name", "description", "requires_authorization", "visible_in_portal",
            "buffer_before_minutes", "buffer_after_minutes", "centers",
        ]  # fmt: skip


class ResourceTypeWriteSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False)
    parent = serializers.IntegerField(  # type: ignore[assignment]  # a field named like Field.parent
        required=False, allow_null=True, help_text="Id of the parent type; null: top."
    )
    description = serializers.CharField(required=False, allow_blank=True)
    requires_authorization = serializers.BooleanField(required=False)
    visible_in_portal = serializers.BooleanField(required=False)
    buffer_before_minutes = serializers.IntegerField(required=False, min_value=0)
    buffer_after_minutes = serializers.IntegerField(required=False, min_value=0)
    centers = serializers.ListField(child=serializers.IntegerField(), required=False, help_text="Checkout center ids.")


class ResourceTypeCreateSerializer(ResourceTypeWriteSerializer):
    library = serializers.CharField(help_text="Id or code of a library where you manage resources.")


class ResourceSerializer(serializers.ModelSerializer[Resource]):
    class Meta:
        model = Resource
        fields = [
            "id", "library", "resource_type", "center", "identifier", "name", "description", "condition_notes",
            "accessories", "contained_in", "out_of_service_from",
        ]  # fmt: skip


class ResourceWriteSerializer(serializers.Serializer[Any]):
    identifier = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    resource_type = serializers.IntegerField(required=False)
    center = serializers.IntegerField(required=False)
    contained_in = serializers.IntegerField(required=False, allow_null=True, help_text="The kit it is part of.")
    description = serializers.CharField(required=False, allow_blank=True)
    condition_notes = serializers.CharField(required=False, allow_blank=True)
    accessories = serializers.CharField(required=False, allow_blank=True)


class ResourceCreateSerializer(ResourceWriteSerializer):
    library = serializers.CharField(help_text="Id or code of a library where you manage resources.")


class ServiceStatusSerializer(serializers.Serializer[Any]):
    in_service = serializers.BooleanField(help_text="true: return to service; false: take out of service.")
    out_of_service_from = serializers.CharField(
        required=False, allow_null=True, help_text="ISO 8601 with an offset; default now."
    )
    comment = serializers.CharField(required=False, allow_blank=True)


class ServiceStatusResultSerializer(serializers.Serializer[Any]):
    resource = ResourceSerializer()
    affected_reservations = serializers.ListField(child=serializers.IntegerField())


class CenterPolicySerializer(serializers.ModelSerializer[CenterPolicy]):
    min_lead_minutes = serializers.IntegerField(min_value=0)
    max_duration_minutes = serializers.IntegerField(min_value=1, allow_null=True)
    max_open_reservations = serializers.IntegerField(min_value=1, allow_null=True)
    series_horizon_days = serializers.IntegerField(min_value=1)
    series_max_occurrences = serializers.IntegerField(min_value=1)
    no_show_minutes = serializers.IntegerField(min_value=0)
    delivery_locations = serializers.ListField(child=serializers.CharField())
    open_hours = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    )

    class Meta:
        model = CenterPolicy
        fields = [
            "center", "min_lead_minutes", "max_duration_minutes", "max_open_reservations", "approval_required",
            "title_required", "desk_pickup", "delivery_locations", "signature_required", "series_horizon_days",
            "series_max_occurrences", "open_hours", "no_show_minutes",
            "portal_message", "problem_reports_enabled", "calendar_feed_enabled",
        ]  # fmt: skip


class CenterPolicyWriteSerializer(serializers.Serializer[Any]):
    min_lead_minutes = serializers.IntegerField(required=False, min_value=0)
    max_duration_minutes = serializers.IntegerField(required=False, allow_null=True)
    max_open_reservations = serializers.IntegerField(required=False, allow_null=True)
    approval_required = serializers.BooleanField(required=False)
    title_required = serializers.BooleanField(required=False)
    desk_pickup = serializers.BooleanField(required=False)
    delivery_locations = serializers.ListField(child=serializers.CharField(), required=False)
    signature_required = serializers.BooleanField(required=False)
    series_horizon_days = serializers.IntegerField(required=False)
    series_max_occurrences = serializers.IntegerField(required=False)
    open_hours = serializers.DictField(required=False, help_text='e.g. {"mon": [["09:00", "17:00"]]}')
    no_show_minutes = serializers.IntegerField(required=False)
    portal_message = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        help_text="HTML shown on the portal dashboard; cleaned on save; an image without alt text is refused.",
    )  # fmt: skip
    problem_reports_enabled = serializers.BooleanField(required=False)
    calendar_feed_enabled = serializers.BooleanField(required=False)


class FreeTypeSerializer(serializers.Serializer[Any]):
    resource_type = serializers.IntegerField()
    free_units = serializers.IntegerField()
    free_resources = serializers.ListField(child=serializers.IntegerField(), required=False)


class WhyNotSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()


class AvailabilitySerializer(serializers.Serializer[Any]):
    center = serializers.IntegerField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    types = FreeTypeSerializer(many=True)
    resource = serializers.IntegerField(required=False)
    why_not = WhyNotSerializer(many=True, required=False, help_text="For `resource`: empty when it is free.")


class ReservationLineSerializer(serializers.ModelSerializer[ReservationLine]):
    quantity = serializers.IntegerField(min_value=1)

    class Meta:
        model = ReservationLine
        fields = ["resource", "resource_type", "quantity"]


class ReservationEventSerializer(serializers.ModelSerializer[ReservationEvent]):
    class Meta:
        model = ReservationEvent
        fields = ["from_state", "to_state", "at", "by_label", "channel", "comment"]


class ReservationSerializer(serializers.ModelSerializer[Reservation]):
    lines = ReservationLineSerializer(many=True, read_only=True)
    events = ReservationEventSerializer(many=True, read_only=True)
    note = serializers.CharField(source="note_to_staff")
    overridden = serializers.ListField(child=serializers.CharField())
    series_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="The series it belongs to, if any.")

    class Meta:
        model = Reservation
        fields = [
            "id", "library", "center", "patron", "series", "series_id", "state", "starts_at", "ends_at", "title", "note",
            "pickup_option", "delivery_location", "channel", "operator_label", "overridden", "override_comment",
            "created_at", "updated_at", "lines", "events",
        ]  # fmt: skip


class LineRequestSerializer(serializers.Serializer[Any]):
    resource = serializers.IntegerField(required=False, allow_null=True)
    resource_type = serializers.IntegerField(required=False, allow_null=True)
    quantity = serializers.IntegerField(required=False)


class ReservationWriteSerializer(serializers.Serializer[Any]):
    starts_at = serializers.CharField(
        required=False, help_text="ISO 8601; without an offset it is the center's local wall-clock time."
    )
    ends_at = serializers.CharField(required=False)
    lines = LineRequestSerializer(many=True, required=False)
    title = serializers.CharField(required=False, allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True)
    pickup_option = serializers.ChoiceField(choices=Reservation.PickupOption.choices, required=False)
    delivery_location = serializers.CharField(required=False, allow_blank=True)
    override_comment = serializers.CharField(
        required=False, help_text="Needs the override permission; overrides the rules that allow it."
    )


class ReservationCreateSerializer(ReservationWriteSerializer):
    patron = serializers.IntegerField()
    center = serializers.IntegerField()
    series = serializers.IntegerField(
        required=False,
        help_text="Add the reservation to this series of the same patron and center (e.g. an occurrence that "
        "conflicted, booked with a substitute).",
    )


class ReservationStepSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, help_text="Required to reject.")
    override_comment = serializers.CharField(required=False, help_text="Approve only.")


class AuthorizationSerializer(serializers.ModelSerializer[Authorization]):
    class Meta:
        model = Authorization
        fields = ["patron", "resource_type", "granted_at", "expires_on"]


class AuthorizationGrantSerializer(serializers.Serializer[Any]):
    resource_type = serializers.IntegerField()
    expires_on = serializers.DateField(required=False, allow_null=True, help_text="Last day, inclusive.")
