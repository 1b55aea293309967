"""Routes of the Administration section. URL parameters are named by kind (``branch_id``, ``role_id`` …)
so the cross-library sweep (tests/test_library_isolation.py) fills them with another library's ids."""

from django.urls import URLPattern, URLResolver, path

from .views import accounts, audit, library, notices, roles, tokens
from .views import clients as client_views
from .views import ill as ill_views
from .views import updates as update_views

app_name = "admin"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", library.IndexView.as_view(), name="index"),
    path("settings/", library.LibrarySettingsView.as_view(), name="settings"),
    path("settings/institution-sign-in/", library.InstitutionSignInView.as_view(), name="institution-sign-in"),
    path("branches/", library.BranchListView.as_view(), name="branches"),
    path("branches/new/", library.BranchFormView.as_view(), name="branch-new"),
    path("branches/<int:branch_id>/", library.BranchFormView.as_view(), name="branch-edit"),
    path("patron-types/", library.PatronTypeListView.as_view(), name="patron-types"),
    path("patron-types/new/", library.PatronTypeFormView.as_view(), name="patron-type-new"),
    path("patron-types/<int:type_id>/", library.PatronTypeFormView.as_view(), name="patron-type-edit"),
    path("roles/", roles.RoleListView.as_view(), name="roles"),
    path("roles/new/", roles.RoleFormView.as_view(), name="role-new"),
    path("roles/<int:role_id>/", roles.RoleFormView.as_view(), name="role-edit"),
    path("roles/<int:role_id>/delete/", roles.RoleDeleteView.as_view(), name="role-delete"),
    path("staff/", accounts.MembershipListView.as_view(), name="memberships"),
    path("staff/new/", accounts.MembershipFormView.as_view(), name="membership-new"),
    path("staff/<int:membership_id>/", accounts.MembershipFormView.as_view(), name="membership-edit"),
    path("staff/<int:membership_id>/remove/", accounts.MembershipRemoveView.as_view(), name="membership-remove"),
    path("audit-log/", audit.AuditLogView.as_view(), name="audit-log"),
    path("tokens/", tokens.TokenListView.as_view(), name="tokens"),
    path("tokens/new/", tokens.TokenCreateView.as_view(), name="token-new"),
    path("tokens/<int:token_id>/revoke/", tokens.TokenRevokeView.as_view(), name="token-revoke"),
    path("notices/", notices.NoticeSettingsView.as_view(), name="notices"),
    path("outbox/", notices.OutboxListView.as_view(), name="outbox"),
    path("updates/", update_views.AccessOptionsView.as_view(), name="updates"),
    path("updates/branches/<int:branch_id>/", update_views.AccessOptionsView.as_view(), name="updates-branch"),
    path("updates/postal-codes/", update_views.PostalCodeUploadView.as_view(), name="postal-codes"),
    path("outbox/<int:message_id>/retry/", notices.OutboxRetryView.as_view(), name="outbox-retry"),
    path("clients/", client_views.ClientListView.as_view(), name="clients"),
    path("clients/new/", client_views.ClientFormView.as_view(), name="client-new"),
    path("clients/<int:client_id>/", client_views.ClientFormView.as_view(), name="client-edit"),
    path(
        "clients/<int:client_id>/reset-secret/",
        client_views.ClientSecretResetView.as_view(),
        name="client-secret-reset",
    ),
    path("ill/", ill_views.IllOverviewView.as_view(), name="ill"),
    path("ill/patrons/", ill_views.IllPatronListView.as_view(), name="ill-patrons"),
]
