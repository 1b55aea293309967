from __future__ import annotations

from django.apps import AppConfig


class FeedsConfig(AppConfig):
    name = "patronage.feeds"
    label = "feeds"
    verbose_name = "Calendar feeds"
