"""sparkbot_dash/local_secrets.py: a secret written once under the var dir, whole, private, and the same for every
process or thread that asks for it at the same moment."""

import stat
import subprocess
import sys
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured

from sparkbot_dash.local_secrets import var_secret
from tests.support import ROOT


def test_it_writes_a_private_secret_once_and_then_reads_it(tmp_path):
    path = tmp_path / "var" / "secret_key"
    first = var_secret(path, create=True)
    assert len(first) >= 50 and path.read_text() == first + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert var_secret(path, create=True) == first
    assert var_secret(path, create=False) == first


def test_it_writes_nothing_when_not_asked_to(tmp_path):
    assert var_secret(tmp_path / "secret_key", create=False) is None
    assert list(tmp_path.iterdir()) == []


def test_it_gives_every_thread_that_races_for_it_the_same_secret(tmp_path):
    path = tmp_path / "audit_chain_key"
    start = threading.Barrier(16)
    found = []

    def ask():
        start.wait()
        found.append(var_secret(path, create=True))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 16 and len(set(found)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["audit_chain_key"]  # no half-written leftovers


def test_it_refuses_an_empty_secret_file_with_a_sentence_naming_it(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("  \n")
    with pytest.raises(ImproperlyConfigured, match="is empty") as refused:
        var_secret(path, create=True)
    assert str(path) in str(refused.value)


def test_it_writes_both_secrets_for_make_setup(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sparkbot_dash.local_secrets", str(tmp_path / "var")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["audit_chain_key", "secret_key"]
    kept = {p.name: p.read_text() for p in (tmp_path / "var").iterdir()}
    again = subprocess.run([sys.executable, "-m", "sparkbot_dash.local_secrets", str(tmp_path / "var")], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and {p.name: p.read_text() for p in (tmp_path / "var").iterdir()} == kept
    assert kept["secret_key"] not in result.stdout + again.stdout  # secrets never printed
