from django.apps import AppConfig


class LibrariesConfig(AppConfig):
    name = "patronage.libraries"
    label = "libraries"
