"""The only addresses of the NCIP pool (``patronage.ncip.wsgi``): the responder and the health check."""

from django.urls import include, path

from patronage.urls import health

urlpatterns = [
    path("healthz", health, name="health"),
    path("ncip/", include("patronage.ncip.urls")),
]
