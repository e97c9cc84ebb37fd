"""`make run` on the embedded default: it sets up, serves the dashboard, reroutes, and Ctrl-C stops it all."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, free_port

SALES_3, SALES_4 = "65a000000000000000000003", "65a000000000000000000004"


def processes_in_group(pgid: int) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pgid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines()
            if line.split()[0] == str(pgid) and not line.split()[1].startswith("Z")]


def environment_of(pgid: int, program: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pgid=,pid=,args="], capture_output=True, text=True).stdout
    pid = next(line.split()[1] for line in listing.splitlines()
               if line.split()[0] == str(pgid) and program in line.split(None, 2)[2])
    return (Path("/proc") / pid / "environ").read_bytes().decode().split("\0")


def wait_for(url: str, process: subprocess.Popen, log, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run ended early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} never answered:\n{log.read_text()[-3000:]}")


def sign_in(http: httpx.Client) -> str:
    page = http.get("/reroute/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    page = http.post("/accounts/login/", data={"username": "lead", "password": "sparkbot-demo",
                                               "csrfmiddlewaretoken": token, "next": "/reroute/"})
    assert page.url.path == "/reroute/", page.text[:1000]
    return page.text


def test_it_serves_reroutes_and_stops_everything_on_ctrl_c(tmp_path):
    web, sandbox = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SPARKBOT_API_URL")}
    env.update(SPARKBOT_DASH_VAR_DIR=str(tmp_path / "var"), WEB_PORT=str(web), SANDBOX_PORT=str(sandbox))
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{web}/accounts/login/", process, log)
        with httpx.Client(base_url=f"http://127.0.0.1:{web}", follow_redirects=True, timeout=10) as http:
            page = sign_in(http)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
            key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
            answer = http.post("/reroute/", data={"source": SALES_3, "target": SALES_4, "idempotency_key": key,
                                                  "csrfmiddlewaretoken": token})
            for _ in range(100):
                if "Moved 37 messages from Sales-3 to Sales-4." in answer.text:
                    break
                time.sleep(0.1)
                answer = http.get(answer.url)
            assert "Moved 37 messages from Sales-3 to Sales-4." in answer.text
        assert (tmp_path / "var" / "db.sqlite3").exists()
        # the worker's links (webhooks, emails) point at this dashboard's port, not the default one
        assert f"SITE_URL=http://127.0.0.1:{web}" in environment_of(process.pid, "celery")

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        process.wait(30)
        deadline = time.monotonic() + 15
        while processes_in_group(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_in_group(process.pid) == []
    finally:
        if process.poll() is None or processes_in_group(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
