from django.urls import URLPattern, URLResolver, include, path

from .views import account, actions, debts, detail, patrons

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
    path("admin/", include("patronage.staff.admin.urls")),
    path("lending/", include("patronage.staff.lending.urls")),
]
