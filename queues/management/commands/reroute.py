"""manage.py reroute SOURCE TARGET: move a number's queue from the command line, as the Reroute button does."""

from __future__ import annotations

import json
import time
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand

from queues import services
from queues.api.common import counts, reroute_result
from queues.device_names import NameNotResolved, device_resolve
from queues.forms import RerouteForm
from queues.models import Reroute

from ._cli import FAILED, STILL_RUNNING, device_list, refused, seconds, shell_user, sleep_until, user_named

KEY_NAMESPACE = uuid.UUID("0f6f4a59-3f0c-4a55-8b53-1f2d8c6a9e21")


class Command(BaseCommand):
    help = ("Move the queued messages of SOURCE to TARGET (each named by id, phone or alias), recorded with "
            "origin “cli”. Exit status: 0 succeeded (or started, without --wait), 1 failed, 2 refused "
            "(unknown or ambiguous number, busy source, bad input), 3 still running when --timeout ran out.")

    def add_arguments(self, parser):
        parser.add_argument("source", help="The number whose queue moves: its id, phone or alias.")
        parser.add_argument("target", help="The number that takes the queue.")
        parser.add_argument("--note", default="", help="Why; kept in the audit log.")
        parser.add_argument("--wait", action="store_true", help="Show progress and wait until it ends.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON (progress goes to stderr).")
        parser.add_argument("--user", help="Record it as asked by this dashboard user (default: cli:<login name>).")
        parser.add_argument("--key", help="An idempotency key: the same command with the same key starts one "
                                          "reroute, however often it runs.")
        parser.add_argument("--timeout", type=seconds, default=900.0, help="Seconds --wait waits at most.")

    def handle(self, *args, **options):
        reroute = self._start(options)
        progress = self.stderr if options["json"] else self.stdout
        progress.write(f"Reroute #{reroute.pk}: {reroute.source_label} → {reroute.target_label}, {reroute.status}.")
        if options["wait"]:
            reroute = self._wait(reroute, progress, timeout=options["timeout"])
        self._report(reroute, as_json=options["json"])
        if reroute.status == Reroute.Status.FAILED:
            raise SystemExit(FAILED)
        if options["wait"] and reroute.is_active:
            raise SystemExit(STILL_RUNNING)
        return None

    def _start(self, options) -> Reroute:
        user = user_named(options["user"], permission="queues.add_reroute", doing="reroute queues")
        username = "" if user else shell_user()
        key = uuid.uuid5(KEY_NAMESPACE, f"cli/{options['key']}") if options["key"] else uuid.uuid4()
        try:
            sent_before = options["key"] and services.reroute_sent_again(
                idempotency_key=key, user=user, username=username, origin=Reroute.Origin.CLI,
                source=options["source"], target=options["target"], note=options["note"])
        except services.KeyReused:
            raise self._key_reused(options["key"])
        return sent_before or self._reroute_new(options, user=user, username=username, key=key)

    def _reroute_new(self, options, *, user, username: str, key: uuid.UUID) -> Reroute:
        listed = device_list()
        try:
            source = device_resolve(name=options["source"], devices=listed)
            target = device_resolve(name=options["target"], devices=listed)
        except NameNotResolved as unresolved:
            lines = [f"  {d.id}  {d.phone or '-':<16} {d.alias}" for d in unresolved.candidates]
            raise refused("\n".join([unresolved.sentence, *lines]))
        form = RerouteForm({"source": source.id, "target": target.id, "note": options["note"],
                            "idempotency_key": str(key)}, devices=listed)
        if not form.is_valid():
            raise refused("\n".join(f"{name}: {message}" for name, messages in form.errors.items()
                                    for message in messages))
        data = form.cleaned_data
        try:
            return services.reroute_request(source=data["source"], target=data["target"], note=data["note"],
                                            user=user, username=username, origin=Reroute.Origin.CLI,
                                            idempotency_key=key)
        except services.SourceBusy as busy:
            active = busy.active
            raise refused(f"{active.source_alias} is already being rerouted: reroute #{active.pk} is "
                          f"{active.get_status_display().lower()}. Wait for it to end.")
        except services.KeyReused:  # the same key, run meanwhile for another reroute
            raise self._key_reused(options["key"])

    @staticmethod
    def _key_reused(key: str):
        return refused(f"The key “{key}” was already used for another reroute; give a new --key for a new one.")

    def _wait(self, reroute: Reroute, progress, *, timeout: float) -> Reroute:
        """Print each new step of the timeline until the reroute ends (or the timeout)."""
        deadline, seen = time.monotonic() + timeout, 0
        while True:
            for event in reroute.events.filter(id__gt=seen).order_by("id"):
                progress.write(f"  {event.at:%H:%M:%S} {event.message}")
                seen = event.pk
            reroute = Reroute.objects.get(pk=reroute.pk)
            if not reroute.is_active or not sleep_until(deadline):
                for event in reroute.events.filter(id__gt=seen).order_by("id"):
                    progress.write(f"  {event.at:%H:%M:%S} {event.message}")
                return reroute

    def _report(self, reroute: Reroute, *, as_json: bool) -> None:
        message = reroute.outcome
        if not as_json:
            if reroute.is_active:
                self.stdout.write(f"Still {reroute.status}: {message} Follow it at {self._url(reroute)}")
            else:
                self.stdout.write(message)
            return
        self.stdout.write(json.dumps({
            "id": reroute.pk, "url": self._url(reroute), "status": reroute.status, "origin": reroute.origin,
            "source": reroute.source_id, "target": reroute.target_id,
            "counts": {"before": counts(reroute.stats_before), "after": counts(reroute.stats_after)},
            "result": reroute_result(reroute, message=message),
        }, ensure_ascii=False))

    @staticmethod
    def _url(reroute: Reroute) -> str:
        return f"{settings.SITE_URL}/reroutes/{reroute.pk}/"
