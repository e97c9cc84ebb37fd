"""README's management commands run exactly as written in the checkout that `make run` prepares.

`make setup` (what `make run` does before it starts anything) runs with a temporary var dir and a fresh
user's environment: no DEBUG, no SECRET_KEY, no DATABASE_URL or REDIS_URL, and no venv on PATH. Then every
line of README.md that runs `manage.py` runs as written, in a shell, from the checkout.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT


def readme_manage_commands() -> list[str]:
    """Every command line in README.md that runs manage.py: `inline code` and indented code lines."""
    text = (ROOT / "README.md").read_text()
    candidates = re.findall(r"`([^`\n]+)`", text)
    candidates += [line.strip() for line in text.splitlines() if line.startswith(("    ", "\t"))]
    commands = [line for line in candidates if re.search(r"\bmanage\.py\s+\w", line)]
    return list(dict.fromkeys(commands))


def fresh_shell_path() -> str:
    venv = (ROOT / ".venv").resolve()
    kept = [part for part in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
            if part and not Path(part).resolve().is_relative_to(venv)]
    return os.pathsep.join(kept)


@pytest.fixture(scope="module")
def prepared_checkout(tmp_path_factory) -> dict:
    """The environment of a user's shell after `make setup`, with its var dir in a temporary folder."""
    var_dir = tmp_path_factory.mktemp("checkout") / "var"
    env = {"PATH": fresh_shell_path(), "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           "SPARKBOT_DASH_VAR_DIR": str(var_dir)}
    setup = subprocess.run(["make", "setup"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    return env


def test_it_finds_the_commands_in_the_readme():
    commands = readme_manage_commands()
    assert any("verify_audit_log" in command for command in commands), commands
    assert any("archive_reroutes" in command for command in commands), commands


@pytest.mark.parametrize("command", readme_manage_commands())
def test_it_runs_each_readme_command_as_written(prepared_checkout, command):
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=prepared_checkout, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{command!r} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
