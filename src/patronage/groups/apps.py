from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "patronage.groups"
    label = "groups"
    verbose_name = "Patron groups"
