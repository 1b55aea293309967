from django.apps import AppConfig


class StandingConfig(AppConfig):
    name = "patronage.standing"
    label = "standing"
