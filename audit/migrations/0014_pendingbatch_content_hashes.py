from django.db import migrations, models


class Migration(migrations.Migration):
    """The outbox keeps the door's content hash of each event, so the worker does not hash it again."""

    dependencies = [("audit", "0013_b_partition_events")]

    operations = [
        migrations.AddField(
            model_name="pendingbatch",
            name="content_hashes",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
