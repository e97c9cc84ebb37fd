from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from queues.roles import ADMIN, SHIFT_MANAGER, SUPPORT_LEAD, roles_ensure

DEMO_PASSWORD = "sparkbot-demo"
DEMO_USERS = {"lead": SUPPORT_LEAD, "manager": SHIFT_MANAGER, "admin": ADMIN}


class Command(BaseCommand):
    help = f"Create the demo users lead, manager and admin, one per role (password {DEMO_PASSWORD!r}), if missing."

    def handle(self, *args, **options):
        User = get_user_model()
        roles_ensure(Group, Permission)
        for username, role in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
                self.stdout.write(f"Created demo user {username} ({role}).")
            user.groups.add(Group.objects.get(name=role))
