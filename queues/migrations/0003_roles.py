from django.contrib.auth.management import create_permissions
from django.db import migrations

from queues.roles import roles_ensure


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():  # permissions are otherwise created only after migrate
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    roles_ensure(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("queues", "0002_reroute_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0010_accessattemptexpiration"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
