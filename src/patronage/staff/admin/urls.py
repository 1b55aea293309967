from django.urls import URLPattern, URLResolver

app_name = "admin"
urlpatterns: list[URLPattern | URLResolver] = []
