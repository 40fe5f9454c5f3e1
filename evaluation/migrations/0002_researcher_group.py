from django.db import migrations


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="researcher")


class Migration(migrations.Migration):
    dependencies = [("evaluation", "0001_initial"), ("catalog", "0002_role_groups")]
    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
