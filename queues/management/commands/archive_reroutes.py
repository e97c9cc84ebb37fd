from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from queues import retention

MAX_DAYS = 36_500  # further back than any reroute; timedelta cannot count much further


class Command(BaseCommand):
    help = ("Move ended reroutes older than the retention period (REROUTE_RETENTION_DAYS) to a gzip JSON-lines "
            "archive file, verify the file, and only then delete them from the database.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, default=None, metavar="N",
                            help="Archive reroutes that ended more than N days ago (default: "
                                 "REROUTE_RETENTION_DAYS; 0 keeps everything).")
        parser.add_argument("--output", type=Path, default=None, metavar="DIR",
                            help="Folder for the archive file (default: <SPARKBOT_DASH_VAR_DIR>/archive).")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be archived; change nothing.")
        parser.add_argument("--verify", type=Path, default=None, metavar="FILE",
                            help="Only check an archive file written earlier (its records and hashes); change nothing.")

    def handle(self, *args, older_than_days, output, dry_run, verify, **options):
        if verify:
            self._verify(verify)
            return
        if older_than_days is not None and not 0 <= older_than_days <= MAX_DAYS:
            raise CommandError(f"--older-than-days must be between 0 and {MAX_DAYS} (100 years).")
        if older_than_days == 0:
            self.stdout.write("--older-than-days 0 keeps every reroute: nothing was archived.")
            return
        days = settings.REROUTE_RETENTION_DAYS if older_than_days is None else older_than_days
        if days == 0:
            self.stdout.write("Retention is off (REROUTE_RETENTION_DAYS is 0): reroutes are kept forever; "
                              "nothing was archived.")
            return
        ended_before = timezone.now() - timedelta(days=days)
        directory = (output or Path(settings.VAR_DIR) / "archive").resolve()
        try:
            result = retention.reroutes_archive(ended_before=ended_before, directory=directory, dry_run=dry_run)
        except retention.ArchiveError as error:
            raise CommandError(f"{error} Nothing was deleted.") from error
        except OSError as error:
            raise CommandError(f"Cannot write the archive in {directory}: {error}. Nothing was deleted.") from error
        plan = result.plan
        if plan is None:
            self.stdout.write(f"Nothing to archive: the oldest kept reroute ended after {ended_before:%Y-%m-%d %H:%M} "
                              "UTC (or none has ended).")
            return
        what = (f"{plan.reroutes} reroutes with {plan.events} events (chain positions {plan.first_seq}-"
                f"{plan.last_seq}, ended {plan.oldest_ended_at:%Y-%m-%d %H:%M} to {plan.newest_ended_at:%Y-%m-%d %H:%M}"
                f" UTC, before the cut-off {ended_before:%Y-%m-%d %H:%M} UTC)")
        if dry_run:
            self.stdout.write(f"Dry run: would archive {what} to {directory}. Nothing changed.")
            return
        self.stdout.write(f"Archived {what}.")
        self.stdout.write(f"Archive file (verified before deleting): {result.path}")
        if result.detached:
            self.stdout.write(f"{result.detached} handover run items no longer link to their archived reroute.")
        self.stdout.write("verify_audit_log now starts after chain position "
                          f"{plan.last_seq}.")

    def _verify(self, path: Path) -> None:
        try:
            summary = retention.archive_verify(path)
        except retention.ArchiveError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{path} is intact: {summary.reroutes} reroutes with {summary.events} events, chain "
                          f"positions {summary.first_seq}-{summary.last_seq}, from hash {summary.previous_hash[:12]}… "
                          f"to {summary.last_hash}.")
