"""The app under gunicorn on a free loopback port, for the benchmarks that talk HTTP."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(settings: dict, folder: Path, workers: int, threads: int) -> Iterator[int]:
    """Start gunicorn (gthread workers holding keep-alive connections); yield its port once it accepts."""
    port = free_port()
    env = {**os.environ, **settings, "SECRET_KEY": "bench", "INSTANCE_PATH": str(folder / "server")}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", str(workers),
                               "--worker-class", "gthread", "--threads", str(threads),
                               "--keep-alive", "75", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                               "wsgi:app"], cwd=REPO, env=env)
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
