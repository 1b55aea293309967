"""The form fields of the lending pages, described as data (see ``staff.fields``)."""

from __future__ import annotations

from ..fields import FieldSpec

RESOURCE_TYPE = (
    FieldSpec("name", "Name", required=True, help="Unique under its parent, e.g. DSLR cameras."),
    FieldSpec("parent", "Parent type", kind="select", help="Empty: a type at the top of the tree."),
    FieldSpec("description", "Description", kind="textarea"),
    FieldSpec(
        "requires_authorization",
        "Requires authorization",
        kind="checkbox",
        help="Only patrons authorized for this type, or a type above it, may reserve it and its subtypes.",
    ),
    FieldSpec("visible_in_portal", "Visible in the portal", kind="checkbox", help="Off: hidden, with its subtypes."),
    FieldSpec("buffer_before_minutes", "Buffer before (minutes)", help="Kept free before each booking, e.g. 15."),
    FieldSpec(
        "buffer_after_minutes", "Buffer after (minutes)", help="Kept free after each booking (cleaning, charging)."
    ),
)

RESOURCE = (
    FieldSpec("identifier", "Identifier", required=True, help="Barcode or inventory number, e.g. CAM-0042."),
    FieldSpec("name", "Name", required=True),
    FieldSpec("resource_type", "Type", kind="select", required=True),
    FieldSpec("center", "Checkout center", kind="select", required=True, help="It must lend the type."),
    FieldSpec("contained_in", "Part of kit", kind="select", help="A part is checked out and in with its kit."),
    FieldSpec("description", "Description", kind="textarea"),
    FieldSpec("condition_notes", "Condition notes", kind="textarea"),
    FieldSpec("accessories", "Accessories", kind="textarea", help="What goes with it, e.g. charger, bag."),
)

OUT_OF_SERVICE = (
    FieldSpec("from_", "Out of service from", kind="datetime-local", help="In the library's time zone; empty: now."),
    FieldSpec("comment", "Comment", kind="textarea", help="Why, e.g. cracked screen."),
)

POLICY = (
    FieldSpec("min_lead_minutes", "Minimum lead time (minutes)", help="A booking must start at least this far ahead."),
    FieldSpec("max_duration_minutes", "Maximum duration (minutes)", help="Empty: no limit."),
    FieldSpec(
        "max_open_reservations",
        "Open reservations per patron",
        help="Pending ones and every occurrence of a series counted. Empty: no limit.",
    ),
    FieldSpec("approval_required", "Portal reservations need approval", kind="checkbox"),
    FieldSpec("title_required", "An event or class title is required", kind="checkbox"),
    FieldSpec("desk_pickup", "Pickup at the desk", kind="checkbox"),
    FieldSpec("delivery_locations", "Delivery locations", kind="textarea", help="One a line; empty: no delivery."),
    FieldSpec("signature_required", "A signature on file is required", kind="checkbox"),
    FieldSpec("series_horizon_days", "Series horizon (days)", help="How far ahead a repeating reservation may book."),
    FieldSpec("series_max_occurrences", "Occurrences per series"),
    FieldSpec(
        "open_hours",
        "Open hours",
        kind="textarea",
        help='Local times per weekday for pickup and return, e.g. {"mon": [["09:00", "17:00"]]}. '
        "Empty: no limit; a day left out is closed.",
    ),
    FieldSpec("no_show_minutes", "No-show after (minutes)", help="How long an uncollected reservation is held."),
    FieldSpec(
        "portal_message",
        "Portal message",
        kind="textarea",
        help="Shown to patrons on the portal dashboard. HTML: paragraphs, lists, links, headings and images "
        "from this site; every image needs alt text saying what it shows. Scripts and styles are removed.",
    ),
    FieldSpec("problem_reports_enabled", "Patrons may report a problem in the portal", kind="checkbox"),
    FieldSpec("calendar_feed_enabled", "Patrons may subscribe to a calendar feed", kind="checkbox"),
)

GRANT = (
    FieldSpec("resource_type", "Resource type", kind="select", required=True),
    FieldSpec("expires_on", "Last day", kind="date", help="Optional, inclusive; empty: no end. Granting again renews."),
)

LINE_COUNT = 3


def line_specs(index: int) -> tuple[FieldSpec, ...]:
    """One line of a reservation form: a specific resource, or a type with a quantity."""
    n = index + 1
    return (
        FieldSpec(f"lines.{index}.resource", f"Line {n}: resource", kind="select"),
        FieldSpec(f"lines.{index}.resource_type", f"Line {n}: or one of this type", kind="select"),
        FieldSpec(f"lines.{index}.quantity", f"Line {n}: quantity", help="For a type; default 1."),
    )


RESERVATION = (
    FieldSpec("starts_at", "Start", kind="datetime-local", required=True, help="Pickup, in the center's local time."),
    FieldSpec("ends_at", "End", kind="datetime-local", required=True, help="Return, in the center's local time."),
    FieldSpec("title", "Event or class title"),
    FieldSpec("note", "Note to staff", kind="textarea"),
    FieldSpec("pickup_option", "Pickup", kind="select"),
    FieldSpec("delivery_location", "Delivery location", help="Only for delivery; one of the center's locations."),
)
NEW_RESERVATION = (
    FieldSpec("patron", "Patron", required=True, help="The patron's barcode or number."),
    FieldSpec("center", "Checkout center", kind="select", required=True),
    *RESERVATION,
)
OVERRIDE = (
    FieldSpec(
        "override_comment",
        "Override comment",
        kind="textarea",
        help="Only to override rules that allow it (not availability); say why. Kept with the reservation.",
    ),
)
COMMENT = (FieldSpec("comment", "Comment", kind="textarea"),)
REJECT = (FieldSpec("comment", "Reason", kind="textarea", required=True, help="The patron sees it."),)

RESERVATION_FILTERS = (
    FieldSpec("state", "State", kind="select"),
    FieldSpec("date_from", "From", kind="date"),
    FieldSpec("date_to", "To", kind="date", help="Inclusive, in the library's time zone."),
    FieldSpec("patron", "Patron number"),
)

AVAILABILITY = (
    FieldSpec("center", "Checkout center", kind="select", required=True),
    FieldSpec("starts_at", "Start", kind="datetime-local", required=True),
    FieldSpec("ends_at", "End", kind="datetime-local", required=True),
    FieldSpec("resource_type", "Type", kind="select", help="Empty: free units of every type."),
    FieldSpec("resource", "Resource", kind="select", help="Why this one is not free, if it is not."),
)

# --- repeats (the "Repeats" fieldset of a new reservation) -------------------------------------------------

REPEAT_FREQUENCIES = (
    ("", "Does not repeat"),
    ("daily", "Daily"),
    ("weekly", "Weekly, on the days ticked below"),
    ("monthly_date", "Monthly, on the start's date"),
    ("monthly_weekday", "Monthly, on the Nth or last weekday"),
)
WEEKDAY_NAMES = (
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
)
WEEK_OF_MONTH = (("1", "1st"), ("2", "2nd"), ("3", "3rd"), ("4", "4th"), ("5", "5th"), ("last", "Last"))

REPEAT = (
    FieldSpec("repeat.frequency", "Repeats", kind="select", choices=REPEAT_FREQUENCIES),
    FieldSpec("repeat.interval", "Every", help="1 to 99 days, weeks or months; empty: every 1."),
    FieldSpec(
        "repeat.week_of_month",
        "Which one (monthly on a weekday)",
        kind="select",
        choices=(("", "—"), *WEEK_OF_MONTH),
        help='"5th" skips months without one; "last" is every month\'s last.',
    ),
    FieldSpec(
        "repeat.month_weekday",
        "Weekday (monthly on a weekday)",
        kind="select",
        choices=(("", "The start's weekday"), *WEEKDAY_NAMES),
    ),
    FieldSpec("repeat.until", "Until", kind="date", help="The last date, inclusive, e.g. 2027-12-31."),
    FieldSpec("repeat.count", "Number of occurrences", help="The first included. Give this, a last date, or both."),
    FieldSpec(
        "all_or_nothing",
        "Book none if any occurrence conflicts",
        kind="checkbox",
        help="Unticked: every free occurrence is booked and each conflicting one is listed with a substitute.",
    ),
)
REPEAT_WEEKDAYS = "repeat.weekdays"

CANCEL_SERIES = (FieldSpec("comment", "Comment", kind="textarea", help="Why; kept with each cancelled occurrence."),)
