import django.core.validators
from django.db import migrations, models

# Libraries that exist when this runs get no period (keep forever): anonymising their history must be a
# choice someone makes on the settings page, not a side effect of an upgrade. New libraries get 365 days.

_FIELD = dict(
    blank=True,
    null=True,
    help_text="Completed reservations and checkouts older than this lose their link to the patron, unless the "
    "patron chose to keep their history. 1 to 3650 days; empty: keep forever.",
    validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(3650)],
    verbose_name="Lending history retention (days)",
)


class Migration(migrations.Migration):
    dependencies = [
        ("libraries", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="library",
            name="lending_history_retention_days",
            field=models.PositiveIntegerField(default=None, **_FIELD),
        ),
        migrations.AlterField(
            model_name="library",
            name="lending_history_retention_days",
            field=models.PositiveIntegerField(default=365, **_FIELD),
        ),
    ]
