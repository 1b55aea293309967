"""Small builders for test data. They go through the services where a rule applies."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from patronage.core.audit import Actor
from patronage.libraries.models import Branch, Library, Membership, Role
from patronage.libraries.permissions import Permission
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron, PatronType

_seq = itertools.count(1)
SYSTEM = Actor.system()
PASSWORD = "correct horse battery staple"


def make_library(code: str | None = None, **kwargs: Any) -> Library:
    code = code or f"lib{next(_seq)}"
    defaults = {"name": f"Library {code}", "currency": "USD", "time_zone": "America/New_York", "country": "US"}
    defaults.update(kwargs)
    return Library.objects.create(code=code, **defaults)


def make_branch(library: Library, code: str = "main", **kwargs: Any) -> Branch:
    branch, _ = Branch.objects.get_or_create(
        library=library, code=code, defaults={"name": f"{library.name} {code}", **kwargs}
    )
    return branch


def make_patron_type(library: Library, code: str = "adult", **kwargs: Any) -> PatronType:
    patron_type, _ = PatronType.objects.get_or_create(
        library=library, code=code, defaults={"name": code.title(), **kwargs}
    )
    return patron_type


def make_patron(library: Library, *, barcode: str | None = "auto", **data: Any) -> Patron:
    n = next(_seq)
    fields: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": f"Lovelace{n}",
        "patron_type": make_patron_type(library).pk,
        "registered_branch": make_branch(library).pk,
        "primary_email": f"ada{n}@example.org",
    }
    phones = data.pop("phones", None)
    fields.update(data)
    number = f"2100{n:010d}" if barcode == "auto" else barcode
    return patron_services.create_patron(actor=SYSTEM, library=library, data=fields, barcode=number, phones=phones)


def make_staff(
    library: Library | Iterable[Library],
    permissions: Iterable[Permission | str] = (),
    *,
    username: str | None = None,
    role_name: str | None = None,
) -> User:
    user_model = get_user_model()
    username = username or f"staff{next(_seq)}"
    user = user_model.objects.create_user(username=username, password=PASSWORD)
    libraries = [library] if isinstance(library, Library) else list(library)
    for lib in libraries:
        role = Role.objects.create(
            library=lib,
            name=role_name or f"role-{username}",
            permissions=sorted(str(p) for p in permissions),
        )
        membership = Membership.objects.create(user=user, library=lib)
        membership.roles.add(role)
    return user


def actor(user: User | None) -> Actor:
    return Actor(user=user, source_ip="127.0.0.1")


def money(value: str) -> Decimal:
    return Decimal(value)
