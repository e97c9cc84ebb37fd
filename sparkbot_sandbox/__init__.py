"""A fake SparkBot (Wassenger-compatible) API for development and tests. Stdlib only.

    server, base_url = serve_in_thread(0)   # base_url ends in /v1
    ...
    server.shutdown()

Run standalone with `python -m sparkbot_sandbox --port 8900`.
"""

from .seed import (
    HTML_ALIAS_DEVICE, MISSING_DEVICE, OFFLINE_DEVICE, DISABLED_DEVICE,
    SALES_1, SALES_2, SALES_3, SALES_4, SEED_DEVICES, SEED_QUEUES,
)
from .server import SandboxServer, make_server, serve_in_thread
from .state import DEFAULT_API_KEY, ApiError, SandboxState

__all__ = [
    "DEFAULT_API_KEY", "ApiError", "SandboxServer", "SandboxState",
    "make_server", "serve_in_thread",
    "SEED_DEVICES", "SEED_QUEUES", "SALES_1", "SALES_2", "SALES_3", "SALES_4",
    "HTML_ALIAS_DEVICE", "OFFLINE_DEVICE", "DISABLED_DEVICE", "MISSING_DEVICE",
]
