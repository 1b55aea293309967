from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "patronage.api"
    label = "api"
