import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("credentials", "0001_initial"),
        ("libraries", "0001_initial"),
        ("patrons", "0004_history_anonymisation"),
    ]

    operations = [
        migrations.CreateModel(
            name="InstitutionSignIn",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("enabled", models.BooleanField(default=False)),
                (
                    "server_uris",
                    models.TextField(
                        blank=True, help_text="One or more ldap:// or ldaps:// addresses, one per line; tried in order."
                    ),
                ),
                (
                    "start_tls",
                    models.BooleanField(default=False, help_text="Upgrade an ldap:// connection with StartTLS."),
                ),
                (
                    "bind_dn",
                    models.CharField(
                        blank=True, help_text="The account that searches the directory.", max_length=500
                    ),
                ),
                ("bind_password", models.CharField(blank=True, max_length=500)),
                ("search_base", models.CharField(blank=True, max_length=500)),
                (
                    "id_attribute",
                    models.CharField(
                        default="employeeNumber", help_text="The attribute holding the institution id.", max_length=100
                    ),
                ),
                (
                    "login_attribute",
                    models.CharField(
                        default="uid", help_text="The attribute the patron's sign-in name is looked up in.",
                        max_length=100,
                    ),
                ),
                (
                    "extra_filter",
                    models.CharField(
                        blank=True, help_text="An LDAP filter every entry must match too.", max_length=500
                    ),
                ),
                ("timeout_seconds", models.PositiveSmallIntegerField(default=5)),
                ("all_patron_types", models.BooleanField(default=True)),
                (
                    "service_name",
                    models.CharField(
                        blank=True, help_text="What patrons call the account, e.g. 'your university account'.",
                        max_length=200,
                    ),
                ),
                (
                    "password_url",
                    models.URLField(blank=True, help_text="Where patrons change or reset that password."),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "library",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="institution_sign_in",
                        to="libraries.library",
                    ),
                ),
                ("patron_types", models.ManyToManyField(blank=True, related_name="+", to="patrons.patrontype")),
            ],
        ),
    ]
