from django.apps import AppConfig


class PatronsConfig(AppConfig):
    name = "patronage.patrons"
    label = "patrons"
