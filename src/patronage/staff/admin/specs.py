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
    FieldSpec(
        "lending_history_retention_days",
        "Lending history retention (days)",
        help="1 to 3650. Completed, cancelled, rejected and no-show reservations, and their checkouts, that "
        "ended longer ago lose their link to the patron unless the patron chose to keep their history. "
        "Empty: keep forever.",
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

INSTITUTION_SIGN_IN = (
    FieldSpec(
        "enabled",
        "Patrons sign in with the institution's account",
        kind="checkbox",
        help="The institution's LDAP directory checks their passwords; the library keeps none for them. Turning "
        "it on removes the portal passwords the library holds for the patrons it covers.",
    ),
    FieldSpec(
        "server_uris",
        "Directory addresses",
        kind="textarea",
        help="One per line, tried in order: ldaps://ldap.example.edu or ldap://ldap.example.edu:389.",
    ),
    FieldSpec(
        "start_tls", "Use StartTLS", kind="checkbox", help="Encrypt ldap:// connections (not needed with ldaps://)."
    ),
    FieldSpec("bind_dn", "Search account", help="The account that looks people up, e.g. cn=portal,dc=example,dc=edu."),
    FieldSpec(
        "bind_password",
        "Search account password",
        kind="password",
        autocomplete="new-password",
        help="Never shown again once saved; leave empty to keep the stored one. Or set it on the server in "
        "PATRONAGE_LDAP_BIND_PASSWORD_<LIBRARY CODE> and leave it empty here.",
    ),
    FieldSpec("search_base", "Search base", help="Where people's entries are, e.g. ou=people,dc=example,dc=edu."),
    FieldSpec(
        "login_attribute",
        "Sign-in name attribute",
        help="The attribute of a person's entry they may sign in with, e.g. uid. Their Person-ID and card number "
        "work too.",
    ),
    FieldSpec(
        "id_attribute",
        "Institution id attribute",
        help="The attribute holding the institution id, e.g. employeeNumber. It must equal the patron's Person-ID.",
    ),
    FieldSpec(
        "extra_filter",
        "Filter",
        help="Optional LDAP filter every entry must match, e.g. (eduPersonAffiliation=student).",
    ),
    FieldSpec("timeout_seconds", "Timeout (seconds)", help="1 to 60: how long to wait for a directory server, e.g. 5."),
    FieldSpec(
        "all_patron_types",
        "Every patron type",
        kind="checkbox",
        help="Untick to choose below which patron types sign in through the institution.",
    ),
    FieldSpec("service_name", "What patrons call the account", help="E.g. your Example University account."),
    FieldSpec(
        "password_url",
        "Where patrons change that password",
        help="A web address, e.g. https://id.example.edu/password.",
    ),
)
