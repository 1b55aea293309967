from django.urls import URLPattern, URLResolver, include, path

from .views import account, actions, debts, detail, patrons
from .views import groups as group_views
from .views import ill as ill_views
from .views import signin as signin_views
from .views import updates as update_views

app_name = "staff"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", account.HomeView.as_view(), name="home"),
    path("login/", account.LoginView.as_view(), name="login"),
    path("logout/", account.LogoutView.as_view(), name="logout"),
    path("switch-library/", account.SwitchLibraryView.as_view(), name="switch-library"),
    path("patrons/", patrons.PatronListView.as_view(), name="patron-list"),
    path("patrons/new/", patrons.PatronCreateView.as_view(), name="patron-new"),
    path("patrons/<int:pk>/", detail.PatronDataView.as_view(), name="patron-detail"),
    path("patrons/<int:pk>/debts/", debts.DebtsView.as_view(), name="patron-debts"),
    path("patrons/<int:pk>/blocks/", detail.PatronBlocksView.as_view(), name="patron-blocks"),
    path("patrons/<int:pk>/history/", detail.PatronHistoryView.as_view(), name="patron-history"),
    path("patrons/<int:pk>/edit/<slug:section>/", detail.PatronEditSectionView.as_view(), name="patron-edit-section"),
    path("patrons/<int:pk>/block/", actions.BlockView.as_view(), name="patron-block"),
    path("patrons/<int:pk>/unblock/", actions.UnblockView.as_view(), name="patron-unblock"),
    path("patrons/<int:pk>/delete/", actions.DeleteView.as_view(), name="patron-delete"),
    path("patrons/<int:pk>/download/", actions.DownloadView.as_view(), name="patron-download"),
    path("patrons/<int:pk>/fees/", debts.AddFeeView.as_view(), name="patron-add-fee"),
    path("patrons/<int:pk>/payments/", debts.TakePaymentView.as_view(), name="patron-take-payment"),
    path("patrons/<int:pk>/waivers/", debts.WaiveFeeView.as_view(), name="patron-waive-fee"),
    path(
        "patrons/<int:pk>/sign-in-lock/clear/",
        signin_views.ClearSignInLockView.as_view(),
        name="patron-clear-sign-in-lock",
    ),
    path("patrons/<int:pk>/password-link/", signin_views.SendPasswordLinkView.as_view(), name="patron-password-link"),
    path("patrons/<int:pk>/group/", group_views.GroupDetailsView.as_view(), name="patron-group"),
    path("patrons/<int:pk>/group/move/", group_views.GroupMoveView.as_view(), name="patron-group-move"),
    path(
        "patrons/<int:pk>/group/members/<int:patron_id>/remove/",
        group_views.GroupMemberRemoveView.as_view(),
        name="patron-group-remove",
    ),
    path(
        "patrons/<int:pk>/group/members/<int:patron_id>/role/",
        group_views.GroupMemberRoleView.as_view(),
        name="patron-group-role",
    ),
    path("patrons/<int:pk>/clone/", group_views.ClonePatronView.as_view(), name="patron-clone"),
    path("patrons/<int:pk>/ill/", ill_views.PatronIllView.as_view(), name="patron-ill"),
    path("update-requests/", update_views.UpdateRequestListView.as_view(), name="update-requests"),
    path("update-requests/<int:update_request_id>/", update_views.UpdateRequestView.as_view(), name="update-request"),
    path(
        "update-requests/<int:update_request_id>/verify/",
        update_views.UpdateRequestActionView.as_view(action="verify"),
        name="update-request-verify",
    ),
    path(
        "update-requests/<int:update_request_id>/reject/",
        update_views.UpdateRequestActionView.as_view(action="reject"),
        name="update-request-reject",
    ),
    path("admin/", include("patronage.staff.admin.urls")),
    path("lending/", include("patronage.staff.lending.urls")),
]
