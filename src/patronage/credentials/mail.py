"""The set-password e-mail. One function queues it on the persistent outbox (``patronage.outbox``), which
the worker sends with retries; a second call for the same link queues nothing (dedupe key per link)."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from django.urls import reverse

from patronage.core import clock
from patronage.outbox import services as outbox

from .models import PasswordLink
from .services import link_token

log = logging.getLogger(__name__)

SUBJECTS = {
    PasswordLink.Purpose.SET: "Choose your password for the {library} portal",
    PasswordLink.Purpose.RESET: "Reset your password for the {library} portal",
}
BODY = """Hello {first_name},

{why}

To choose your password, open this link:

{url}

The link works once and expires on {expires} ({zone} time). After that, ask for a new one on the
portal's sign-in page with "Forgot your password?".

If you did not ask for this, you can ignore this message: nothing changes until the link is used.

{library}
"""
WHY = {
    PasswordLink.Purpose.SET: "{library} has set up your account for its patron portal.",
    PasswordLink.Purpose.RESET: "Someone, probably you, asked to reset your password for the {library} portal.",
}


def set_password_url(link: PasswordLink, base_url: str) -> str:
    path = reverse("portal:set-password", kwargs={"library": link.patron.library.code, "token": link_token(link)})
    return base_url.rstrip("/") + path


def deliver_password_link(link_id: int, base_url: str) -> bool:
    """Queue the link's e-mail to the patron's primary address; False (nothing queued) when the link is no
    longer usable or the patron has no address. Works inside the caller's transaction: a rollback sends nothing.
    """
    link = PasswordLink.objects.select_related("patron", "patron__library").filter(pk=link_id).first()
    if link is None or link.used_at is not None or link.expires_at <= clock.now():
        return False
    patron = link.patron
    if not patron.primary_email:
        log.warning("password link %s not sent: patron %s has no e-mail address", link.pk, patron.pk)
        return False
    library = patron.library
    zone = ZoneInfo(library.time_zone)
    purpose = PasswordLink.Purpose(link.purpose)
    body = BODY.format(
        first_name=patron.first_name,
        why=WHY[purpose].format(library=library.name),
        url=set_password_url(link, base_url),
        expires=link.expires_at.astimezone(zone).strftime("%Y-%m-%d at %H:%M"),
        zone=library.time_zone,
        library=library.name,
    )
    outbox.enqueue(
        kind=f"password_link_{purpose.value}",
        to=[patron.primary_email],
        subject=SUBJECTS[purpose].format(library=library.name),
        text=body,
        library=library,
        patron_id=patron.pk,
        dedupe_key=f"password_link:{link.pk}",
    )
    return True
