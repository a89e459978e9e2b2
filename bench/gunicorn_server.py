"""The app under gunicorn on a free loopback port, for the benchmarks that talk HTTP.

With BENCH_PROFILE=<folder> in the environment, gunicorn also reads this file
as its config: each worker then runs every request it handles (HTTP parsing
and writing included) under cProfile, one profile per thread, and writes them
merged to <folder>/worker-<pid>.prof when it exits. Read them with
`python -m pstats`.
"""
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


class Port(int):
    """The port gunicorn listens on; `cpu_seconds()` is the CPU its master and workers used so far."""

    server_pid: int

    def cpu_seconds(self) -> float:
        # Imported here: gunicorn also reads this file as its config, where bench/ is not on the path.
        from cpu import cpu_seconds

        return sum(cpu_seconds(pid) for pid in [self.server_pid, *_children(self.server_pid)])


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextlib.contextmanager
def gunicorn(settings: dict, folder: Path, workers: int, threads: int, worker_class: str = "gthread") -> Iterator[int]:
    """Start gunicorn (gthread workers holding keep-alive connections); yield its port once it accepts."""
    port = free_port()
    env = {**os.environ, **settings, "SECRET_KEY": "bench", "INSTANCE_PATH": str(folder / "server")}
    profile = ["-c", __file__] if os.environ.get("BENCH_PROFILE") else []
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", *profile, "--workers", str(workers),
                               "--worker-class", worker_class, "--threads", str(threads),
                               "--keep-alive", "75", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                               "wsgi:app"], cwd=REPO, env=env)
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        port = Port(port)
        port.server_pid = server.pid
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- gunicorn hooks, read only when BENCH_PROFILE is set (see the docstring) ----------------


def post_worker_init(worker) -> None:
    import cProfile
    import threading

    profiles: list[cProfile.Profile] = []
    mine = threading.local()
    handle = worker.handle

    def profiled(conn):
        profiler = getattr(mine, "profiler", None)
        if profiler is None:
            profiler = mine.profiler = cProfile.Profile(time.thread_time)  # CPU, not waits
            profiles.append(profiler)
        profiler.enable()
        try:
            return handle(conn)
        finally:
            profiler.disable()

    worker.handle = profiled
    worker.bench_profiles = profiles


def worker_exit(_server, worker) -> None:
    import pstats

    profiles = getattr(worker, "bench_profiles", [])
    if profiles:
        stats = pstats.Stats(profiles[0])
        for profiler in profiles[1:]:
            stats.add(profiler)
        stats.dump_stats(str(Path(os.environ["BENCH_PROFILE"]) / f"worker-{os.getpid()}.prof"))
