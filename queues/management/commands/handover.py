"""manage.py handover PLAN: run a shift handover plan from the command line, as its “Run now” button does."""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from queues import handovers
from queues.api.handovers import run_sentence
from queues.models import HandoverPlan, HandoverRun

from ._cli import FAILED, STILL_RUNNING, device_list, refused, seconds, sleep_until, user_named


class Command(BaseCommand):
    help = ("Run the handover plan PLAN (its id or name) now, as USER. Exit status: 0 every move succeeded "
            "(or the run started, without --wait), 1 a move failed or was not run, 2 refused (unknown plan or "
            "user, a run of the plan still going), 3 still running when --timeout ran out.")

    def add_arguments(self, parser):
        parser.add_argument("plan", help="The plan's id or its name.")
        parser.add_argument("--user", required=True,
                            help="The dashboard user the run is recorded under (its moves are theirs).")
        parser.add_argument("--wait", action="store_true", help="Show progress and wait until the run ends.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON (progress goes to stderr).")
        parser.add_argument("--timeout", type=seconds, default=3600.0, help="Seconds --wait waits at most.")

    def handle(self, *args, **options):
        user = user_named(options["user"], permission="queues.run_handover", doing="run shift handovers")
        plan = self._plan(options["plan"])
        try:
            run = handovers.handover_start(plan=plan, user=user, device_list=device_list())
        except handovers.RunInProgress as busy:
            which = f"run #{busy.run.pk}" if busy.run else "another run"
            raise refused(f"“{plan.name}” was not started again: {which} of this plan has not finished yet.")
        progress = self.stderr if options["json"] else self.stdout
        progress.write(f"Handover “{plan.name}”: run #{run.pk} started, {run.items.count()} moves.")
        if options["wait"]:
            run = self._wait(run, progress, timeout=options["timeout"])
        ok = self._report(run, as_json=options["json"], waited=options["wait"])
        if options["wait"] and run.ended_at is None:
            raise SystemExit(STILL_RUNNING)
        if options["wait"] and not ok:
            raise SystemExit(FAILED)

    @staticmethod
    def _plan(name: str) -> HandoverPlan:
        plan = HandoverPlan.objects.filter(pk=int(name)).first() if name.isdigit() else None
        plan = plan or HandoverPlan.objects.filter(name=name).first()
        if plan is None:
            names = ", ".join(f"“{p}”" for p in HandoverPlan.objects.values_list("name", flat=True)[:20])
            raise refused(f"There is no handover plan called “{name}”. Plans: {names or 'none yet'}.")
        return plan

    @staticmethod
    def _progress(run: HandoverRun):
        items = list(run.items.select_related("reroute"))
        return items, handovers.run_progress(run=run, items=items)

    def _wait(self, run: HandoverRun, progress, *, timeout: float) -> HandoverRun:
        """Print a line whenever a move ends, until the run ends (or the timeout)."""
        deadline, said = time.monotonic() + timeout, set()
        while True:
            run = HandoverRun.objects.get(pk=run.pk)
            items, state = self._progress(run)
            for item in items:
                reroute = item.reroute
                over = item.status in ("cancelled", "skipped") or (reroute and not reroute.is_active)
                if item.pk not in said and over:
                    said.add(item.pk)
                    what = reroute.outcome if reroute else (item.waiting_reason or item.get_status_display())
                    progress.write(f"  {len(said)}/{state.total} {item.source_alias} → {item.target_alias}: {what}")
            if run.ended_at is not None or not sleep_until(deadline):
                return run

    def _report(self, run: HandoverRun, *, as_json: bool, waited: bool) -> bool:
        items, state = self._progress(run)
        ok = run.ended_at is not None and run.status == HandoverRun.Status.FINISHED and state.succeeded == state.total
        sentence = run_sentence(run, state)
        if not as_json:
            self.stdout.write(sentence if waited else f"Follow it at {settings.SITE_URL}/handovers/runs/{run.pk}/")
            return ok
        self.stdout.write(json.dumps({
            "id": run.pk, "url": f"{settings.SITE_URL}/handovers/runs/{run.pk}/", "plan_name": run.plan_name,
            "status": run.status, "progress": {**vars(state), "percent": state.percent},
            "items": [{"position": i.position, "source": i.source_id, "target": i.target_id, "status": i.status,
                       "reroute": i.reroute_id, "reroute_status": i.reroute.status if i.reroute else None}
                      for i in items],
            "result": {"ok": ok, "done": run.ended_at is not None, "state": run.status, "message": sentence},
        }, ensure_ascii=False))
        return ok
