from django.apps import AppConfig


class BlocksConfig(AppConfig):
    name = "patronage.blocks"
    label = "blocks"
