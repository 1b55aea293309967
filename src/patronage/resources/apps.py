from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    name = "patronage.resources"
    label = "resources"
