from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "patronage.staff"
    label = "staff"
