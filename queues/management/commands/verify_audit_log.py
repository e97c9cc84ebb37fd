from django.core.management.base import BaseCommand, CommandError

from queues import audit


class Command(BaseCommand):
    help = "Walk the audit chain of ended reroutes and name the first record that breaks it."

    def handle(self, *args, **options):
        report = audit.chain_verify()
        if not report.intact:
            raise CommandError(f"The audit log is broken after {report.checked} intact records. {report.reason}")
        self.stdout.write(f"The audit log is intact: {report.checked} ended reroutes checked.")
