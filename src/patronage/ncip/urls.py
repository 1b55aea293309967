from django.urls import path

from . import views

app_name = "ncip"
urlpatterns = [path("", views.endpoint, name="endpoint")]
