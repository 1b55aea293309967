from django.apps import AppConfig


class ResourceSharingConfig(AppConfig):
    name = "patronage.resourcesharing"
    label = "resourcesharing"
    verbose_name = "Resource sharing and protocol clients"
