from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_PASSWORD = "sparkbot-demo"
DEMO_USERS = {"lead": {}, "manager": {}, "admin": {"is_staff": True, "is_superuser": True}}


class Command(BaseCommand):
    help = f"Create the demo users lead, manager and admin (password {DEMO_PASSWORD!r}) if missing."

    def handle(self, *args, **options):
        User = get_user_model()
        for username, flags in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username, defaults=flags)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
                self.stdout.write(f"Created demo user {username}.")
