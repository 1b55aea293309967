from django.apps import AppConfig


class NcipConfig(AppConfig):
    name = "patronage.ncip"
    verbose_name = "NCIP 2.0 responder"
