"""The form fields of the administration pages, described as data (see ``staff.fields``)."""

from __future__ import annotations

from ..fields import FieldSpec

LIBRARY_SETTINGS = (
    FieldSpec("name", "Name", required=True),
    FieldSpec(
        "currency",
        "Currency",
        required=True,
        help="Three-letter ISO 4217 code, e.g. USD or EUR. Amounts already recorded are not converted.",
    ),
    FieldSpec(
        "time_zone",
        "Time zone",
        required=True,
        help="A time zone name such as America/New_York or Europe/Oslo. Expiry dates and block ends follow it.",
    ),
    FieldSpec(
        "country",
        "Country",
        required=True,
        help="Two-letter ISO 3166 code, e.g. US or NO. Phone numbers typed without a prefix are read as this country's.",
    ),
)

BRANCH = (
    FieldSpec("code", "Code", required=True, help="Letters, digits, '-' and '_'; unique at this library, e.g. main."),
    FieldSpec("name", "Name", required=True),
    FieldSpec("email", "E-mail", kind="email", help="Optional; where the branch can be reached."),
    FieldSpec(
        "is_checkout_center",
        "Checkout center",
        kind="checkbox",
        help="The branch lends resources; the portal offers it for reservations.",
    ),
)

PATRON_TYPE = (
    FieldSpec("code", "Code", required=True, help="Letters, digits, '-' and '_'; unique at this library, e.g. adult."),
    FieldSpec("name", "Name", required=True),
    FieldSpec(
        "fine_limit",
        "Fine limit",
        required=True,
        help="A patron who owes more than this may not borrow, e.g. 5.00. With 0.00 any debt stops borrowing.",
    ),
    FieldSpec(
        "expiry_months",
        "Expiry period (months)",
        required=True,
        help="How long a new or renewed record lasts, e.g. 12.",
    ),
    FieldSpec("loan_limit", "Loan limit", help="How many open loans at once; empty: no limit."),
    FieldSpec("may_self_update", "May update contact details online", kind="checkbox"),
    FieldSpec("may_use_ill", "May request through interlibrary loan", kind="checkbox"),
)

ROLE = (FieldSpec("name", "Name", required=True, help="E.g. Desk staff; unique at this library."),)

ACCOUNT = (
    FieldSpec("username", "Username", required=True, autocomplete="off", help="What the person signs in with."),
    FieldSpec("first_name", "First name", autocomplete="off"),
    FieldSpec("last_name", "Last name", autocomplete="off"),
    FieldSpec("email", "E-mail", kind="email", autocomplete="off"),
)
PASSWORD_NEW = (
    FieldSpec(
        "password",
        "Password",
        kind="password",
        autocomplete="new-password",
        help="At least 10 characters, not a common password. Leave both empty to set it later on the server "
        "with: patronage changepassword USERNAME.",
    ),
    FieldSpec("password_again", "Password again", kind="password", autocomplete="new-password"),
)
PASSWORD_CHANGE = (
    FieldSpec(
        "password",
        "New password",
        kind="password",
        autocomplete="new-password",
        help="Leave both empty to keep the current password.",
    ),
    FieldSpec("password_again", "New password again", kind="password", autocomplete="new-password"),
)
ACTIVE = (
    FieldSpec(
        "is_active",
        "Active",
        kind="checkbox",
        help="An inactive account cannot sign in or use its API tokens, at any library.",
    ),
)
HOME_BRANCH = (FieldSpec("home_branch", "Home branch", kind="select"),)

AUDIT_FILTERS = (
    FieldSpec("action", "Action", help="E.g. patron.updated; end with a dot (patron.) for every action of a kind."),
    FieldSpec("actor", "Staff member", help="Username, e.g. jsmith."),
    FieldSpec("patron", "Patron number", help="The number in the address of the patron's page."),
    FieldSpec("date_from", "From", kind="date"),
    FieldSpec("date_to", "To", kind="date", help="Inclusive, in the library's time zone."),
)

TOKEN = (
    FieldSpec("name", "Name", required=True, help="Where the token is used, e.g. self-check kiosk 2."),
    FieldSpec("expires_on", "Expires on", kind="date", help="Optional: it stops working at the end of this day."),
)
