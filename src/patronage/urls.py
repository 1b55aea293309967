from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import include, path


def root(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/staff/")


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", root),
    path("healthz", health, name="health"),
    path("staff/", include("patronage.staff.urls")),
    path("api/", include("patronage.api.urls")),
    path("portal/", include("patronage.portal.urls")),
    path("ncip/", include("patronage.ncip.urls")),
]
