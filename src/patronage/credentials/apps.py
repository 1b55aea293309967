from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "patronage.credentials"
    label = "credentials"
    verbose_name = "Patron credentials"
