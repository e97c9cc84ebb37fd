"""Secrets kept in files under the var dir, for a checkout whose environment has none (`make run`).

`make setup` writes them (`python -m sparkbot_dash.local_secrets VAR_DIR`); settings read them, and write
one on first need where they are allowed to. Web, worker and beat may start at the same moment: a secret is
written whole to a private temporary file and then linked into place, which fails if another process got
there first; the loser reads the winner's file.
"""

import os
import secrets
import sys
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

SECRET_KEY_FILE = "secret_key"
AUDIT_CHAIN_KEY_FILE = "audit_chain_key"


def var_secret(path: Path, *, create: bool) -> str | None:
    """The secret kept in `path`; when there is none, a new one written there if `create`, else None."""
    try:
        return _read(path)
    except FileNotFoundError:
        if not create:
            return None
    try:
        _write_once(path, secrets.token_urlsafe(50))
        return _read(path)
    except OSError as error:
        raise ImproperlyConfigured(f"Cannot keep a secret in {path}: {error.strerror or error}.") from None


def _read(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise ImproperlyConfigured(f"{path} is empty; delete it to have a new secret written, or put one in it.")
    return value


def _write_once(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # O_EXCL, mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(value + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)  # never replaces: the first process to get here wins
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)


def main(var_dir: str) -> None:
    for name in (SECRET_KEY_FILE, AUDIT_CHAIN_KEY_FILE):
        path = Path(var_dir).resolve() / name
        existed = path.exists()
        var_secret(path, create=True)
        print(f"{'Kept' if existed else 'Wrote'} {path}.")


if __name__ == "__main__":
    main(*sys.argv[1:2] or ["var"])
