"""The password hash every Patronage password is kept as: Argon2id with parameters from the settings.

Django's own Argon2 hasher fixes its cost at 100 MiB, two passes and eight lanes: about 200 ms of CPU per
check on a small server, and 100 MiB per sign-in in flight. Patronage defaults to the first configuration
the OWASP Password Storage Cheat Sheet recommends for Argon2id (19 MiB, two passes, one lane), which costs
a fraction of that and guards against offline guessing as well as the other configurations it lists. A
library that wants a higher cost raises ``PATRONAGE_PASSWORD_MEMORY_KIB``, ``PATRONAGE_PASSWORD_TIME_COST``
or ``PATRONAGE_PASSWORD_PARALLELISM``; every stored hash made with other parameters still verifies and is
re-made with the current ones at its owner's next successful sign-in (Django's ``must_update``).

The algorithm name stays ``argon2``, so hashes written by Django's hasher are read by this one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    """Argon2id with ``settings.PATRONAGE_PASSWORD_ARGON2`` (memory in KiB, time cost, parallelism)."""

    def params(self) -> Any:
        cost = settings.PATRONAGE_PASSWORD_ARGON2
        self.memory_cost = int(cost["memory_kib"])
        self.time_cost = int(cost["time_cost"])
        self.parallelism = int(cost["parallelism"])
        return super().params()  # type: ignore[misc]
