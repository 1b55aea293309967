from django.urls import URLPattern, URLResolver, path

from . import views
from .views import booking, calendar, dashboard, mine, problems
from .views import updates as update_views

app_name = "portal"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.LibraryIndexView.as_view(), name="index"),
    path("<slug:library>/", dashboard.DashboardView.as_view(), name="dashboard"),
    path("<slug:library>/sign-in/", views.SignInView.as_view(), name="sign-in"),
    path("<slug:library>/sign-out/", views.SignOutView.as_view(), name="sign-out"),
    path("<slug:library>/forgot-password/", views.ForgotPasswordView.as_view(), name="forgot-password"),
    path("<slug:library>/set-password/", views.SetPasswordView.as_view(), name="set-password-form"),
    path("<slug:library>/set-password/<str:token>/", views.SetPasswordLinkView.as_view(), name="set-password"),
    path("<slug:library>/center/", views.CenterView.as_view(), name="center"),
    path("<slug:library>/contrast/", views.ContrastView.as_view(), name="contrast"),
    path("<slug:library>/help/", views.HelpView.as_view(), name="help"),
    path("<slug:library>/reservations/<int:reservation_id>/", mine.ReservationView.as_view(), name="reservation"),
    path("<slug:library>/reservations/<int:reservation_id>/edit/", mine.EditView.as_view(), name="reservation-edit"),
    path(
        "<slug:library>/reservations/<int:reservation_id>/cancel/", mine.CancelView.as_view(), name="reservation-cancel"
    ),
    path(
        "<slug:library>/reservations/<int:reservation_id>/cancel-rest/",
        mine.CancelView.as_view(rest=True),
        name="reservation-cancel-rest",
    ),
    path("<slug:library>/checkouts/<int:checkout_id>/", mine.CheckoutView.as_view(), name="checkout"),
    path("<slug:library>/checkouts/<int:checkout_id>/copy/", mine.CopyCheckoutView.as_view(), name="checkout-copy"),
    path("<slug:library>/my-data/", mine.MyDataView.as_view(), name="my-data"),
    path("<slug:library>/reservations/new/", booking.NewReservationView.as_view(), name="reservation-new"),
    path("<slug:library>/reservations/new/review/", booking.ReviewView.as_view(), name="reservation-review"),
    path("<slug:library>/reservations/new/done/", booking.DoneView.as_view(), name="reservation-done"),
    path("feed/<str:token>.ics", calendar.FeedView.as_view(), name="feed"),
    path("<slug:library>/problems/", problems.ProblemsView.as_view(), name="problems"),
    path("<slug:library>/problems/new/", problems.ProblemNewView.as_view(), name="problem-new"),
    path("<slug:library>/problems/<int:ticket_id>/", problems.ProblemView.as_view(), name="problem"),
    path("<slug:library>/calendar/", calendar.CalendarView.as_view(), name="calendar"),
    path("<slug:library>/my-details/", update_views.UpdateDetailsView.as_view(), name="update-details"),
    path("<slug:library>/calendar/issue/", calendar.CalendarIssueView.as_view(), name="calendar-issue"),
    path("<slug:library>/calendar/revoke/", calendar.CalendarRevokeView.as_view(), name="calendar-revoke"),
    path("<slug:library>/calendar/email/", calendar.CalendarEmailView.as_view(), name="calendar-email"),
]
