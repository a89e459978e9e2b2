"""The run command: migrate, seed the demo once, run web + worker + scheduler, stop all on Ctrl-C."""
from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis
from rq import Queue, Worker

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.mark.slow
def test_serve_runs_everything_on_embedded_defaults_and_stops_together(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env["INSTANCE_PATH"] = str(tmp_path / "instance")
    log = open(tmp_path / "serve.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "annotate", "serve", "--port", str(port)],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        children = psutil.Process(process.pid).children(recursive=True)
        output = (tmp_path / "serve.log").read_text()
        logins = dict(re.findall(r"^\s+operator\s+(\S+)\s+(\S+)$", output, re.M))
        assert "operator@demo.local" in logins, output

        # The printed login works against the real server, CSRF token and all.
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "email": "operator@demo.local",
                                       "password": logins["operator@demo.local"]}).encode()
        home = opener.open(f"http://127.0.0.1:{port}/login", data=form).read().decode()
        assert "Hello, Olive Operator" in home and "annotator, operator" in home

        # The embedded Redis serves the worker, which runs background jobs.
        connection = redis.Redis(unix_socket_path=str(tmp_path / "instance" / "redis.sock"))
        deadline = time.monotonic() + 30
        while not Worker.all(connection=connection) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert Worker.all(connection=connection), "no RQ worker registered"
        job = Queue("default", connection=connection).enqueue("os.getcwd")
        # Generous: the worker also runs the schedule's first jobs, and CI machines are shared.
        deadline = time.monotonic() + 120
        while job.get_status(refresh=True) != "finished" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.return_value() == str(REPO)
        connection.close()
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        code = process.wait(timeout=120)
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    # Children get a moment to finish exiting on a loaded machine; none may outlive that.
    deadline = time.monotonic() + 10
    while (alive := [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive == []

    # A second start keeps the data and prints no new passwords.
    process = subprocess.Popen([sys.executable, "-m", "annotate", "serve", "--port", str(port)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    assert "already has users" in output and "operator@demo.local" not in output
