"""A checkout center's portal settings: the message on the patrons' dashboard and two feature switches."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reservations", "0005_availability_indexes")]

    operations = [
        migrations.AddField(
            model_name="centerpolicy",
            name="portal_message",
            field=models.TextField(
                blank=True, help_text="Shown on the portal dashboard; HTML, cleaned on save (images need alt text)."
            ),
        ),
        migrations.AddField(
            model_name="centerpolicy",
            name="problem_reports_enabled",
            field=models.BooleanField(default=True, help_text="Patrons may report a problem here."),
        ),
        migrations.AddField(
            model_name="centerpolicy",
            name="calendar_feed_enabled",
            field=models.BooleanField(default=True, help_text="Patrons may subscribe to a calendar feed."),
        ),
    ]
