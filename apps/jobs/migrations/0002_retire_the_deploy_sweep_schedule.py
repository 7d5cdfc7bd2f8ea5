"""Beat's database schedule keeps entries its settings no longer name: the deploy sweeper's
became part of `jobs.redrive`, so its old periodic task (whose task no longer exists) goes."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def retire(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="deployments.sweep").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_redrive_counts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(retire, migrations.RunPython.noop)]
