"""SparkBot's webhook: a hint that a number changed. The monitor reads it at once, then the rules evaluate.

Any payload is accepted and nothing in it is trusted as state: a device id found in it only says
which number to read again (none, or an unknown one: the device list is read). The caller proves
itself with the secret in the URL; the answer comes at once and the work is done by a worker.
"""

import hmac
import json
import logging
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import dispatch
from ..sparkbot import DEVICE_ID

logger = logging.getLogger(__name__)
DEVICE_KEYS = ("device", "deviceId", "device_id")
MAX_BODY = 64 * 1024


@csrf_exempt
@login_not_required
@require_POST
def sparkbot_hook(request, secret: str):
    expected = settings.SPARKBOT_WEBHOOK_SECRET
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        return JsonResponse({"error": "Unknown webhook."}, status=404)  # a guess learns nothing
    if not _within_rate_limit():
        return JsonResponse({"error": "Too many webhook calls this minute."}, status=429,
                            headers={"Retry-After": str(60 - int(time.time()) % 60)})
    device_id = named_device(request.body[:MAX_BODY])
    try:
        dispatch.monitor_nudge(device_id)
    except Exception as error:  # the broker is down: SparkBot retries, the monitor's cycle reads it anyway
        logger.warning("webhook could not reach the task queue: %s", type(error).__name__)
        return JsonResponse({"error": "The task queue is not answering; try again."}, status=503)
    return JsonResponse({"accepted": True, "device": device_id}, status=202)


def named_device(body: bytes) -> str | None:
    """The first device id under a key like "device" or "deviceId", at any depth; None if there is none."""
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return None
    pending = [payload]
    while pending:
        node = pending.pop(0)
        if isinstance(node, dict):
            for key in DEVICE_KEYS:
                found = node.get(key)
                found = found.get("id") if isinstance(found, dict) else found
                if isinstance(found, str) and DEVICE_ID.match(found):
                    return found
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return None


def _within_rate_limit() -> bool:
    key = f"queues:sparkbot-hook:{int(time.time()) // 60}"
    try:
        cache.add(key, 0, timeout=120)
        return cache.incr(key) <= settings.SPARKBOT_WEBHOOK_PER_MINUTE
    except Exception:  # the cache is down: let it through, the monitor's budget still holds
        return True
