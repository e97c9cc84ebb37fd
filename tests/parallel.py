"""Test processes side by side (pytest-xdist, `make test`): each one gets a Redis database and a var
folder of its own, so that its Celery workers, broker, caches and locks never meet another's.

Loaded with `-p` (pytest.ini), before pytest-django reads the settings; the test database already
gets a name of its own from pytest-django (test_<name>_gw1).
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
REDIS_DATABASES = 16


def own_redis_database(url: str, worker: int) -> str:
    """The database numbered `worker` below the URL's (wrapping round Redis's 16)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"Test processes side by side each need a Redis database of their own, named in a "
                         f"redis:// or rediss:// REDIS_URL (not {parts.scheme}://); run one with TEST_PROCESSES=0.")
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base - worker) % REDIS_DATABASES}"))


def isolate(environ, worker_name: str) -> None:
    worker = int(worker_name.removeprefix("gw"))
    if environ.get("REDIS_URL"):
        environ["REDIS_URL"] = own_redis_database(environ["REDIS_URL"], worker)
    var = Path(environ.get("SPARKBOT_DASH_VAR_DIR") or ROOT / "var")  # settings.py's default
    environ["SPARKBOT_DASH_VAR_DIR"] = str(var / worker_name)


if os.environ.get("PYTEST_XDIST_WORKER"):
    isolate(os.environ, os.environ["PYTEST_XDIST_WORKER"])
