"""Routes of the lending section. URL parameters are named by kind (``center_id``, ``resource_id`` …) so the
cross-library sweep (tests/test_library_isolation.py) fills them with another library's ids."""

from django.urls import URLPattern, URLResolver, path

from .views import catalog, reservations

app_name = "lending"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", reservations.IndexView.as_view(), name="index"),
    path("availability/", reservations.AvailabilityView.as_view(), name="availability"),
    path("centers/<int:center_id>/reservations/", reservations.CenterReservationsView.as_view(), name="center"),
    path("centers/<int:center_id>/policy/", catalog.PolicyFormView.as_view(), name="policy"),
    path("reservations/new/", reservations.ReservationCreateView.as_view(), name="reservation-new"),
    path("reservations/<int:reservation_id>/", reservations.ReservationDetailView.as_view(), name="reservation"),
    path(
        "reservations/<int:reservation_id>/edit/", reservations.ReservationEditView.as_view(), name="reservation-edit"
    ),
    path(
        "reservations/<int:reservation_id>/approve/",
        reservations.ReservationStepView.as_view(step="approve"),
        name="reservation-approve",
    ),
    path(
        "reservations/<int:reservation_id>/reject/",
        reservations.ReservationStepView.as_view(step="reject"),
        name="reservation-reject",
    ),
    path(
        "reservations/<int:reservation_id>/cancel/",
        reservations.ReservationStepView.as_view(step="cancel"),
        name="reservation-cancel",
    ),
    path("types/", catalog.TypeListView.as_view(), name="types"),
    path("types/new/", catalog.TypeFormView.as_view(), name="type-new"),
    path("types/<int:resource_type_id>/", catalog.TypeFormView.as_view(), name="type-edit"),
    path("resources/", catalog.ResourceListView.as_view(), name="resources"),
    path("resources/new/", catalog.ResourceFormView.as_view(), name="resource-new"),
    path("resources/<int:resource_id>/", catalog.ResourceFormView.as_view(), name="resource-edit"),
    path("resources/<int:resource_id>/service/", catalog.ResourceServiceView.as_view(), name="resource-service"),
    path("patrons/<int:patron_id>/authorizations/", catalog.AuthorizationsView.as_view(), name="authorizations"),
    path(
        "patrons/<int:patron_id>/authorizations/<int:resource_type_id>/revoke/",
        catalog.RevokeAuthorizationView.as_view(),
        name="authorization-revoke",
    ),
]
