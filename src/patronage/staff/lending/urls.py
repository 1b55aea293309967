"""Routes of the lending section. URL parameters are named by kind (``center_id``, ``resource_id`` …) so the
cross-library sweep (tests/test_library_isolation.py) fills them with another library's ids."""

from django.urls import URLPattern, URLResolver, path

from .views import catalog, desk, reservations, tickets

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
    path("centers/<int:center_id>/desk/", desk.DeskView.as_view(), name="desk"),
    path("centers/<int:center_id>/walk-up/", desk.WalkUpView.as_view(), name="walk-up"),
    path("reservations/<int:reservation_id>/checkout/", desk.CheckOutView.as_view(), name="reservation-checkout"),
    path("checkouts/<int:checkout_id>/", desk.CheckoutView.as_view(), name="checkout"),
    path("checkouts/<int:checkout_id>/checkin/", desk.CheckInView.as_view(), name="checkout-checkin"),
    path("checkouts/<int:checkout_id>/copy/", desk.CopyView.as_view(), name="checkout-copy"),
    path(
        "reservations/<int:reservation_id>/cancel-series/",
        reservations.SeriesCancelView.as_view(),
        name="reservation-cancel-series",
    ),
    path("series/<int:series_id>/", reservations.SeriesDetailView.as_view(), name="series"),
    path("series/<int:series_id>/substitute/", reservations.SeriesSubstituteView.as_view(), name="series-substitute"),
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
    path("tickets/", tickets.TicketListView.as_view(), name="tickets"),
    path("tickets/<int:ticket_id>/", tickets.TicketView.as_view(), name="ticket"),
    path("tickets/<int:ticket_id>/assign/", tickets.TicketActionView.as_view(action="assign"), name="ticket-assign"),
    path("tickets/<int:ticket_id>/state/", tickets.TicketActionView.as_view(action="state"), name="ticket-state"),
    path("tickets/<int:ticket_id>/comment/", tickets.TicketActionView.as_view(action="comment"), name="ticket-comment"),
]
