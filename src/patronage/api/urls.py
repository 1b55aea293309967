from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import circulation, credentials, lending, views
from . import groups as group_api
from . import resourcesharing as resource_sharing
from . import tickets as ticket_api
from . import updates as update_api

# Everything under /api/v1/ is version 1 of the interface; a breaking change gets /api/v2/.

app_name = "api"
urlpatterns: list[URLPattern | URLResolver] = [
    path("v1/me/", views.MeView.as_view(), name="me"),
    path("v1/libraries/", views.LibraryListView.as_view(), name="library-list"),
    path(
        "v1/libraries/<str:library>/institution-sign-in/",
        credentials.LibraryInstitutionSignInView.as_view(),
        name="library-institution-sign-in",
    ),
    path("v1/patron-types/", views.PatronTypeListView.as_view(), name="patron-type-list"),
    path("v1/patron-types/<int:type_id>/", views.PatronTypeDetailView.as_view(), name="patron-type-detail"),
    path("v1/patrons/", views.PatronListView.as_view(), name="patron-list"),
    path("v1/patrons/<int:pk>/", views.PatronDetailView.as_view(), name="patron-detail"),
    path("v1/patrons/<int:pk>/standing/", views.PatronStandingView.as_view(), name="patron-standing"),
    path("v1/patrons/<int:pk>/export/", views.PatronExportView.as_view(), name="patron-export"),
    path("v1/patrons/<int:pk>/barcodes/", views.PatronBarcodeView.as_view(), name="patron-barcodes"),
    path("v1/patrons/<int:pk>/account/", views.PatronAccountView.as_view(), name="patron-account"),
    path("v1/patrons/<int:pk>/fees/", views.PatronFeeView.as_view(), name="patron-fees"),
    path("v1/patrons/<int:pk>/fees/<int:fee>/waivers/", views.PatronWaiverView.as_view(), name="patron-fee-waivers"),
    path("v1/patrons/<int:pk>/payments/", views.PatronPaymentView.as_view(), name="patron-payments"),
    path("v1/patrons/<int:pk>/blocks/", views.PatronBlocksView.as_view(), name="patron-blocks"),
    path("v1/patrons/<int:pk>/unblock/", views.PatronUnblockView.as_view(), name="patron-unblock"),
    path(
        "v1/patrons/<int:pk>/password-link/", credentials.PatronPasswordLinkView.as_view(), name="patron-password-link"
    ),
    path("v1/patrons/<int:pk>/sign-in-lock/", credentials.PatronSignInLockView.as_view(), name="patron-sign-in-lock"),
    path("v1/resource-types/", lending.ResourceTypeListView.as_view(), name="resource-type-list"),
    path(
        "v1/resource-types/<int:resource_type_id>/",
        lending.ResourceTypeDetailView.as_view(),
        name="resource-type-detail",
    ),
    path("v1/resources/", lending.ResourceListView.as_view(), name="resource-list"),
    path("v1/resources/<int:resource_id>/", lending.ResourceDetailView.as_view(), name="resource-detail"),
    path("v1/resources/<int:resource_id>/service/", lending.ResourceServiceView.as_view(), name="resource-service"),
    path("v1/centers/<int:center_id>/policy/", lending.CenterPolicyView.as_view(), name="center-policy"),
    path("v1/availability/", lending.AvailabilityView.as_view(), name="availability"),
    path("v1/reservations/", lending.ReservationListView.as_view(), name="reservation-list"),
    path("v1/reservations/<int:reservation_id>/", lending.ReservationDetailView.as_view(), name="reservation-detail"),
    path(
        "v1/reservations/<int:reservation_id>/approve/",
        lending.ReservationApproveView.as_view(),
        name="reservation-approve",
    ),
    path(
        "v1/reservations/<int:reservation_id>/reject/",
        lending.ReservationRejectView.as_view(),
        name="reservation-reject",
    ),
    path(
        "v1/reservations/<int:reservation_id>/cancel/",
        lending.ReservationCancelView.as_view(),
        name="reservation-cancel",
    ),
    path(
        "v1/reservations/<int:reservation_id>/cancel-series/",
        lending.ReservationCancelSeriesView.as_view(),
        name="reservation-cancel-series",
    ),
    path("v1/reservation-series/", lending.ReservationSeriesListView.as_view(), name="reservation-series-list"),
    path(
        "v1/reservation-series/<int:series_id>/",
        lending.ReservationSeriesDetailView.as_view(),
        name="reservation-series-detail",
    ),
    path("v1/patrons/<int:pk>/authorizations/", lending.AuthorizationListView.as_view(), name="patron-authorizations"),
    path(
        "v1/patrons/<int:pk>/authorizations/<int:resource_type_id>/",
        lending.AuthorizationDetailView.as_view(),
        name="patron-authorization",
    ),
    path("v1/checkouts/", circulation.CheckoutListView.as_view(), name="checkout-list"),
    path("v1/checkouts/<int:checkout_id>/", circulation.CheckoutDetailView.as_view(), name="checkout-detail"),
    path("v1/checkouts/<int:checkout_id>/checkin/", circulation.CheckInView.as_view(), name="checkout-checkin"),
    path("v1/checkouts/<int:checkout_id>/copy/", circulation.CopyView.as_view(), name="checkout-copy"),
    path(
        "v1/reservations/<int:reservation_id>/checkout/",
        circulation.ReservationCheckOutView.as_view(),
        name="reservation-checkout",
    ),
    path("v1/lending-jobs/", circulation.LendingJobsView.as_view(), name="lending-jobs"),
    path("v1/ill/validate/", resource_sharing.IllValidateView.as_view(), name="ill-validate"),
    path("v1/update-requests/", update_api.UpdateRequestListView.as_view(), name="update-request-list"),
    path(
        "v1/update-requests/<int:update_request_id>/",
        update_api.UpdateRequestDetailView.as_view(),
        name="update-request-detail",
    ),
    path(
        "v1/update-requests/<int:update_request_id>/verify/",
        update_api.UpdateRequestVerifyView.as_view(),
        name="update-request-verify",
    ),
    path(
        "v1/update-requests/<int:update_request_id>/reject/",
        update_api.UpdateRequestRejectView.as_view(),
        name="update-request-reject",
    ),
    path("v1/access-options/", update_api.AccessOptionsView.as_view(), name="access-options"),
    path("v1/postal-codes/", update_api.PostalCodeListView.as_view(), name="postal-codes"),
    path("v1/tickets/", ticket_api.TicketListView.as_view(), name="ticket-list"),
    path("v1/tickets/<int:ticket_id>/", ticket_api.TicketDetailView.as_view(), name="ticket-detail"),
    path("v1/tickets/<int:ticket_id>/comments/", ticket_api.TicketCommentView.as_view(), name="ticket-comments"),
    path("v1/groups/", group_api.GroupListView.as_view(), name="group-list"),
    path("v1/groups/<int:group_id>/", group_api.GroupDetailView.as_view(), name="group-detail"),
    path("v1/groups/<int:group_id>/members/", group_api.GroupMembersView.as_view(), name="group-members"),
    path("v1/groups/<int:group_id>/members/<int:patron_id>/", group_api.GroupMemberView.as_view(), name="group-member"),
    path("v1/patrons/<int:pk>/group/", group_api.PatronGroupView.as_view(), name="patron-group"),
    path("v1/patrons/<int:pk>/clone/", group_api.PatronCloneView.as_view(), name="patron-clone"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI sets style attributes from its script; its page alone allows inline styles.
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
]
