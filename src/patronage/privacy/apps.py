from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "patronage.privacy"
    label = "privacy"
